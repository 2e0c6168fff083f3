package devstack

import (
	"context"
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
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	running, err := srv.Start(rctx, addr)
	if err != nil {
		cancel()
		return err
	}
	s.RegistryURL = running.URL()
	s.endpoints = append(s.endpoints, Endpoint{Name: "Schema Registry", Addr: s.RegistryURL})
	s.closers = append(s.closers, func() {
		cancel()
		_ = running.Wait()
	})
	return nil
}
