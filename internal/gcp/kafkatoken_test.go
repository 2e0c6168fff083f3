package gcp

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

func TestKafkaTokenHasTheShapeGoogleManagedKafkaDocuments(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tok := EncodeKafkaToken("ya29.abc", "sa@p.iam.gserviceaccount.com", now, now.Add(time.Hour))
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || strings.Contains(tok, "=") {
		t.Fatalf("token %q: want three unpadded base64url parts", tok)
	}
	head, _ := base64.RawURLEncoding.DecodeString(parts[0])
	body, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if string(head) != `{"alg":"GOOG_OAUTH2_TOKEN","typ":"JWT"}` || !strings.Contains(string(body), `"iss":"Google"`) || !strings.Contains(string(body), `"scope":"kafka"`) || !strings.Contains(string(body), `"exp":1800003600`) {
		t.Fatalf("header %s, payload %s", head, body)
	}
	c, err := DecodeKafkaToken(tok, now)
	if err != nil || c.AccessToken != "ya29.abc" || c.Subject != "sa@p.iam.gserviceaccount.com" {
		t.Fatalf("decoded %+v, %v", c, err)
	}
	for name, bad := range map[string]string{
		"expired":     EncodeKafkaToken("ya29.abc", "sa@p", now.Add(-2*time.Hour), now.Add(-time.Hour)),
		"no subject":  EncodeKafkaToken("ya29.abc", "", now, now.Add(time.Hour)),
		"no access":   EncodeKafkaToken("", "sa@p", now, now.Add(time.Hour)),
		"other alg":   "eyJhbGciOiJIUzI1NiJ9." + parts[1] + "." + parts[2],
		"not a token": "abc",
	} {
		if _, err := DecodeKafkaToken(bad, now); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestPrincipalEmailFromCredentialsFiles(t *testing.T) {
	for raw, want := range map[string]string{
		`{"type":"service_account","client_email":"a@p.iam.gserviceaccount.com"}`: "a@p.iam.gserviceaccount.com",
		`{"type":"impersonated_service_account","service_account_impersonation_url":"https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/b%40p.iam.gserviceaccount.com:generateAccessToken"}`: "b@p.iam.gserviceaccount.com",
		`{"type":"authorized_user"}`: "",
	} {
		if got := emailFromJSON([]byte(raw)); got != want {
			t.Errorf("%s: %q, want %q", raw, got, want)
		}
	}
}
