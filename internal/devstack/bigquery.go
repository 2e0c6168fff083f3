package devstack

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/sluice-dev/sluice/internal/bqemu"
)

// startBigQuery serves the BigQuery emulator: the Storage Write API over
// gRPC and the REST API, with tables and rows in a SQLite file beside the
// broker data (in memory without a data directory).
func (s *Stack) startBigQuery(ctx context.Context) error {
	grpcAddr := net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.BigQueryGRPCPort))
	restAddr := net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.BigQueryRESTPort))
	if s.opts.BigQueryGRPCPort != 0 {
		if err := CheckPort("the BigQuery emulator (gRPC)", grpcAddr, "--bigquery-grpc-port"); err != nil {
			return err
		}
	}
	if s.opts.BigQueryRESTPort != 0 {
		if err := CheckPort("the BigQuery emulator (REST)", restAddr, "--bigquery-rest-port"); err != nil {
			return err
		}
	}
	opts := bqemu.Options{Logger: s.opts.Logger}
	if s.opts.DataDir != "" {
		dir := filepath.Join(s.opts.DataDir, "bigquery")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("creating the BigQuery emulator's directory: %w", err)
		}
		opts.DBPath = filepath.Join(dir, "bigquery.db")
	}
	emu, err := bqemu.New(ctx, opts)
	if err != nil {
		return fmt.Errorf("starting the BigQuery emulator: %w", err)
	}
	// The emulator serves until Close, not until the caller's ctx ends.
	addrs, err := emu.Start(context.WithoutCancel(ctx), grpcAddr, restAddr)
	if err != nil {
		emu.Close()
		return fmt.Errorf("starting the BigQuery emulator: %w", err)
	}
	s.BigQuery, s.BigQueryAddrs = emu, addrs
	s.endpoints = append(s.endpoints,
		Endpoint{Name: "BigQuery REST", Addr: "http://" + addrs.REST},
		Endpoint{Name: "BigQuery gRPC", Addr: addrs.GRPC},
	)
	s.closers = append(s.closers, func() { _ = emu.Close() })
	return nil
}
