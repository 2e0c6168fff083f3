package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/sluice-dev/sluice/internal/admin"
	"github.com/sluice-dev/sluice/internal/assembly"
	"github.com/sluice-dev/sluice/internal/config"
	"golang.org/x/sync/errgroup"
)

// startAdmin serves the admin API and dashboard for built pipelines in grp
// until ctx is done. It listens before returning, so a taken port is
// reported at start.
func startAdmin(ctx context.Context, grp *errgroup.Group, cfg *config.Admin, built []*assembly.Built, log *slog.Logger) error {
	listen := cfg.Listen
	if listen == "" {
		listen = "127.0.0.1:8080"
	}
	token := cfg.Token
	if token == "" {
		token = os.Getenv("SLUICE_ADMIN_TOKEN")
	}
	pipelines := make([]admin.Pipeline, 0, len(built))
	for _, b := range built {
		pipelines = append(pipelines, admin.Pipeline{Pipeline: b.Pipeline, Config: b.Config, Source: b.Source, Sink: b.Sink})
	}
	srv, err := admin.New(admin.Options{Pipelines: pipelines, Token: token, AllowedHosts: cfg.AllowedHosts, MaxConsumers: cfg.MaxConsumers, Logger: log})
	if err != nil {
		return err
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", listen)
	if err != nil {
		return fmt.Errorf("starting the admin API on %s: %w", listen, err)
	}
	if err := admin.CheckExposure(ln.Addr(), token); err != nil {
		_ = ln.Close()
		return err
	}
	scheme := "http"
	if cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("loading admin.cert_file/key_file: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		scheme = "https"
	}
	log.Info("admin API and dashboard", "url", scheme+"://"+ln.Addr().String()+"/", "token", token != "")
	grp.Go(func() error { return srv.Serve(ctx, ln) })
	return nil
}
