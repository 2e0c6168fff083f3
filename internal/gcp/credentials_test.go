package gcp

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCredentials(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if opts, err := Credentials("", "x.credentials_file"); err != nil || opts != nil {
		t.Fatalf("no file: %v, %v; want application default credentials (no options)", opts, err)
	}
	if opts, err := Credentials(write("sa.json", `{"type":"service_account","project_id":"p"}`), "f"); err != nil || len(opts) != 1 {
		t.Fatalf("service account: %v, %v", opts, err)
	}
	for _, tc := range []struct{ file, want string }{
		{filepath.Join(dir, "missing.json"), "source.pubsub.credentials_file: open"},
		{write("bad.json", "not json"), "is not a JSON credentials file"},
		{write("gdch.json", `{"type":"gdch_service_account"}`), `credentials of type "gdch_service_account" are not supported`},
	} {
		if _, err := Credentials(tc.file, "source.pubsub.credentials_file"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Credentials(%s) = %v, want an error containing %q", tc.file, err, tc.want)
		}
	}
}

// The secrets of a credentials file are what status masks in error texts.
func TestSecrets(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "user.json")
	if err := os.WriteFile(file, []byte(`{"type":"authorized_user","client_id":"id","client_secret":"cs-1","refresh_token":"rt-2"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := Secrets(file); strings.Join(got, ",") != "cs-1,rt-2" {
		t.Fatalf("Secrets = %q, want the client secret and the refresh token", got)
	}
	if got := Secrets(""); got != nil {
		t.Fatalf("no file: %q", got)
	}
	if got := Secrets(filepath.Join(dir, "missing.json")); got != nil {
		t.Fatalf("missing file: %q", got)
	}
}
