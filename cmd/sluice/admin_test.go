package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/admin"
	"github.com/sluice-dev/sluice/internal/config"
	"golang.org/x/sync/errgroup"
)

func TestAdminBeyondLoopbackWithoutATokenDoesNotStart(t *testing.T) {
	t.Setenv("SLUICE_ADMIN_TOKEN", "")
	var grp errgroup.Group
	err := startAdmin(context.Background(), &grp, &config.Admin{Listen: "0.0.0.0:0"}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if !errors.Is(err, admin.ErrTokenRequired) || !strings.Contains(err.Error(), "SLUICE_ADMIN_TOKEN") {
		t.Fatalf("startAdmin on 0.0.0.0 without a token: %v", err)
	}
	if err := grp.Wait(); err != nil {
		t.Fatal(err)
	}
}

// --admin moved the API and dropped the file's token with it.
func TestAdminFlagKeepsTheFilesToken(t *testing.T) {
	a := withAdminListen(&config.Admin{Listen: "127.0.0.1:8080", Token: "s3cret", AllowedHosts: []string{"h"}}, "0.0.0.0:9000")
	if a.Listen != "0.0.0.0:9000" || a.Token != "s3cret" || len(a.AllowedHosts) != 1 {
		t.Fatalf("admin = %+v", a)
	}
	if a := withAdminListen(nil, "127.0.0.1:9"); a.Listen != "127.0.0.1:9" {
		t.Fatalf("admin = %+v", a)
	}
}
