package main

import (
	"context"
	"log/slog"

	"github.com/sluice-dev/sluice/internal/assembly"
	"github.com/sluice-dev/sluice/internal/config"
	"golang.org/x/sync/errgroup"
)

// startAdmin serves the admin API for built pipelines.
func startAdmin(_ context.Context, _ *errgroup.Group, admin *config.Admin, _ []*assembly.Built, log *slog.Logger) error {
	log.Info("admin API not available in this build yet", "listen", admin.Listen)
	return nil
}
