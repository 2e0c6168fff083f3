package devstack

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"path/filepath"
	"strconv"

	"github.com/sluice-dev/sluice/internal/registry"
)

// startRegistry serves the Confluent-compatible schema registry, persisted
// beside the broker data.
func (s *Stack) startRegistry(ctx context.Context) error {
	addr := net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.RegistryPort))
	if s.opts.RegistryPort != 0 {
		if err := CheckPort("the schema registry", addr, "--registry-port"); err != nil {
			return err
		}
	}
	dir := ""
	if s.opts.DataDir != "" {
		dir = filepath.Join(s.opts.DataDir, "schema-registry")
	}
	srv, err := registry.New(registry.Options{Dir: dir, Logger: s.opts.Logger})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening for the schema registry: %w", err)
	}
	s.RegistryURL = "http://" + ln.Addr().String()
	if s.serverTLS != nil {
		ln = tls.NewListener(ln, s.serverTLS)
		s.RegistryURL = "https://" + ln.Addr().String()
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(rctx, ln); err != nil {
			s.opts.Logger.Error("schema registry stopped", "err", err)
		}
	}()
	s.endpoints = append(s.endpoints, Endpoint{Name: "Schema Registry", Addr: s.RegistryURL})
	s.closers = append(s.closers, func() {
		cancel()
		<-done
	})
	return nil
}
