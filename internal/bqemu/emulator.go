// Package bqemu emulates the parts of Google BigQuery that Sluice's
// BigQuery sink uses, well enough for Google's own Go clients to run
// against it unchanged: the Storage Write API over gRPC (what
// cloud.google.com/go/bigquery/storage/managedwriter calls, multiplexing
// included) and the REST calls of cloud.google.com/go/bigquery for
// datasets, tables and tabledata.list.
//
// Rows are validated against the table schema the way BigQuery does it;
// failures can be injected and quotas imposed (Faults); connections and
// streams are counted (Stats). Data lives in memory or in a SQLite file.
//
// Start both servers:
//
//	emu, err := bqemu.New(ctx, bqemu.Options{})
//	addrs, err := emu.Start(ctx, "127.0.0.1:9060", "127.0.0.1:9050")
//	defer emu.Close()
//
// and point the clients at them:
//
//	managedwriter.NewClient(ctx, project,
//		option.WithEndpoint(addrs.GRPC), option.WithoutAuthentication(),
//		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
//	bigquery.NewClient(ctx, project,
//		option.WithEndpoint("http://"+addrs.REST), option.WithoutAuthentication())
package bqemu

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"golang.org/x/sync/errgroup"
	bq "google.golang.org/api/bigquery/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// Options configures an Emulator. The zero value is a usable in-memory
// emulator.
type Options struct {
	// DBPath is a SQLite file holding datasets, tables and committed rows,
	// created if missing and reopened as it was. Default "": in memory.
	// Rows of uncommitted PENDING/BUFFERED streams are never persisted.
	DBPath string
	// Location is reported for datasets, tables and write streams.
	// Default "US".
	Location string
	// Faults are the faults and quotas to start with. Default: none.
	Faults Faults
	// Logger receives debug and lifecycle logs. Default: discarded.
	Logger *slog.Logger
}

// Emulator is a BigQuery emulator. Its methods are safe for concurrent use.
type Emulator struct {
	log      *slog.Logger
	location string
	store    rowStore
	cat      *catalog
	streams  *streamRegistry
	descs    *descriptorCache
	results  queryResults // of jobs.query, for jobs.getQueryResults
	faults   faultState
	stats    *counters

	done      chan struct{} // closed by Close: every server stops
	closeOnce sync.Once

	mu      sync.Mutex
	started bool
	servers *errgroup.Group // the servers of Start
}

// New opens the emulator's storage; ctx bounds only that.
func New(ctx context.Context, opts Options) (*Emulator, error) {
	if err := opts.Faults.validate(); err != nil {
		return nil, fmt.Errorf("validating faults: %w", err)
	}
	e := &Emulator{
		log:      opts.Logger,
		location: opts.Location,
		streams:  &streamRegistry{m: make(map[string]*writeStream)},
		descs:    newDescriptorCache(),
		stats:    newCounters(),
		done:     make(chan struct{}),
		servers:  &errgroup.Group{},
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.location == "" {
		e.location = "US"
	}
	e.faults.set(opts.Faults)
	if opts.DBPath == "" {
		e.store = newMemStore()
	} else {
		s, err := openSQLite(ctx, opts.DBPath)
		if err != nil {
			return nil, err
		}
		e.store = s
	}
	cat, err := newCatalog(ctx, e.store, e.location)
	if err != nil {
		e.store.close()
		return nil, fmt.Errorf("loading catalog: %w", err)
	}
	e.cat = cat
	return e, nil
}

// Addrs are the addresses Start bound, as host:port.
type Addrs struct {
	GRPC string // Storage Write API
	REST string // REST API and /emulator admin endpoints
}

// Start listens on grpcAddr and restAddr (port 0 picks a free port) and
// serves both until ctx ends or Close is called. It returns once both
// listeners are bound. Start may be called once per Emulator.
func (e *Emulator) Start(ctx context.Context, grpcAddr, restAddr string) (Addrs, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started {
		return Addrs{}, errors.New("bqemu: already started")
	}
	var lc net.ListenConfig
	gl, err := lc.Listen(ctx, "tcp", grpcAddr)
	if err != nil {
		return Addrs{}, fmt.Errorf("listening for gRPC on %s: %w", grpcAddr, err)
	}
	rl, err := lc.Listen(ctx, "tcp", restAddr)
	if err != nil {
		gl.Close()
		return Addrs{}, fmt.Errorf("listening for REST on %s: %w", restAddr, err)
	}
	e.started = true
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return e.ServeGRPC(gctx, gl) })
	g.Go(func() error { return e.ServeREST(gctx, rl) })
	e.servers.Go(g.Wait)
	e.log.Info("BigQuery emulator listening", "grpc", gl.Addr().String(), "rest", rl.Addr().String())
	return Addrs{GRPC: gl.Addr().String(), REST: rl.Addr().String()}, nil
}

// Wait blocks until the servers of Start have stopped and returns the
// first serving error (nil after a normal stop).
func (e *Emulator) Wait() error { return e.servers.Wait() }

// ServeGRPC serves the Storage Write API on lis until ctx ends or Close
// is called, counting the listener's TCP connections in Stats. It closes
// lis. Open streams are cut when it stops, as a server crash would.
func (e *Emulator) ServeGRPC(ctx context.Context, lis net.Listener) error {
	srv := grpc.NewServer(
		grpc.MaxRecvMsgSize(4*maxAppendBytes), // so oversize appends get BigQuery's error, not gRPC's
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	)
	storagepb.RegisterBigQueryWriteServer(srv, &writeService{e: e})
	stopped := make(chan struct{})
	var g errgroup.Group
	g.Go(func() error {
		select {
		case <-ctx.Done():
		case <-e.done:
		case <-stopped:
		}
		srv.Stop()
		return nil
	})
	err := srv.Serve(&countingListener{Listener: lis, g: &e.stats.conns})
	close(stopped)
	g.Wait()
	if err != nil && !errors.Is(err, grpc.ErrServerStopped) { // stopped before it started
		return fmt.Errorf("serving gRPC on %s: %w", lis.Addr(), err)
	}
	return nil
}

// ServeREST serves RESTHandler on lis until ctx ends or Close is called.
func (e *Emulator) ServeREST(ctx context.Context, lis net.Listener) error {
	srv := &http.Server{Handler: e.RESTHandler(), ReadHeaderTimeout: 10 * time.Second}
	stopped := make(chan struct{})
	var g errgroup.Group
	g.Go(func() error {
		select {
		case <-ctx.Done():
		case <-e.done:
		case <-stopped:
			return nil
		}
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			srv.Close()
		}
		return nil
	})
	err := srv.Serve(lis)
	close(stopped)
	g.Wait()
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving REST on %s: %w", lis.Addr(), err)
	}
	return nil
}

// Close stops every server, waits for those of Start, and closes storage.
func (e *Emulator) Close() error {
	var err error
	e.closeOnce.Do(func() {
		close(e.done)
		werr := e.servers.Wait()
		err = errors.Join(werr, e.store.close())
	})
	return err
}

// Stats returns a snapshot of the counters.
func (e *Emulator) Stats() Stats { return e.stats.snapshot() }

// ResetStats zeroes totals and sets peaks to the current values.
func (e *Emulator) ResetStats() { e.stats.reset() }

// SetFaults replaces the fault and quota configuration. A lowered
// MaxConnections applies to streams opened from now on.
func (e *Emulator) SetFaults(f Faults) error {
	if err := f.validate(); err != nil {
		return err
	}
	e.faults.set(f)
	return nil
}

// Faults returns the current configuration; Next counts down as faults
// are injected.
func (e *Emulator) Faults() Faults { return e.faults.get() }

// CreateDataset creates a dataset, as datasets.insert does.
func (e *Emulator) CreateDataset(ctx context.Context, project, dataset string) error {
	_, err := e.cat.insertDataset(ctx, project, &bq.Dataset{DatasetReference: &bq.DatasetReference{DatasetId: dataset}})
	return err
}

// CreateTable creates a table with a schema in BigQuery's REST form, as
// tables.insert does.
func (e *Emulator) CreateTable(ctx context.Context, project, dataset, table string, schema []*bq.TableFieldSchema) error {
	_, err := e.cat.insertTable(ctx, datasetKey{project, dataset}, &bq.Table{
		TableReference: &bq.TableReference{TableId: table},
		Schema:         &bq.TableSchema{Fields: schema},
	})
	return err
}
