// Package sql is the PostgreSQL, MySQL/MariaDB and SQLite sink: records
// land in a (staging) table through each database's fast bulk path, and an
// optional merge procedure moves them on when a count, an idle period or a
// maximum interval says so.
//
// Guarantees:
//   - Write returns nil only after COMMIT. A value that does not fit its
//     column rejects that record alone (a *connector.BatchError naming the
//     table, column and offset); the rest of the batch is written.
//   - delivery: exactly_once keeps the next Kafka offset of every partition
//     in sluice_offsets, in the same transaction as the rows, and skips
//     rows below it: a retried or replayed batch (after a crash, a lost
//     COMMIT acknowledgement, or a partition that moved to another
//     consumer mid-batch) is never written twice. With at_least_once a
//     crash between COMMIT and the Kafka offset commit writes the rows of
//     the batch again.
//   - Merges (see merge.go) are atomic with their bookkeeping: a staging
//     row is merged once, or stays for the next merge.
//   - Known gap: with exactly_once, a record rejected as bad input in a
//     batch whose good rows committed is re-read after a crash only if no
//     later record of its partition was written; a kill between the COMMIT
//     and the dead-letter ack can then lose its dead-letter copy.
//
// Scale-out, per database:
//   - PostgreSQL: several processes; write gate = transaction advisory
//     lock (shared/exclusive), merge lock = session advisory lock.
//   - MySQL/MariaDB: several processes; write gate = the pipeline's row of
//     sluice_merge_state (LOCK IN SHARE MODE / FOR UPDATE), merge lock =
//     GET_LOCK. innodb_lock_wait_timeout is raised to 3600 s for the
//     sink's sessions so writes wait out a long pause-mode merge (each
//     wait cut at statement_timeout, then retried: see newMySQL).
//
// Every round trip to a PostgreSQL or MySQL server has a deadline
// (deadline.go), so a half-open connection cannot stall a partition.
//   - SQLite: one process (one writer connection, in-process merge lock).
//
// Merge procedures run inside the sink's transaction: they must not COMMIT
// themselves (PostgreSQL refuses it) nor run DDL that commits implicitly
// (MySQL TRUNCATE); DELETE the merged rows instead.
package sql

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/metrics"
	"golang.org/x/sync/errgroup"
)

// Options are what the sink needs besides its config.
type Options struct {
	Kind        string // postgres | mysql | sqlite
	Config      config.SQLSink
	Pipeline    string
	ExactlyOnce bool // delivery: exactly_once
	// Slots: with ExactlyOnce, offsets are stored per (topic, partition,
	// slot), as parallelism with by: key or partition needs (slots.go).
	Slots bool
	// Fields, when set, decodes values (JSON, Avro) field by field: the
	// sink then takes records undecoded (connector.FieldVisitorSink) and
	// places each field straight into its column, unless columns maps
	// fields explicitly.
	Fields connector.FieldVisitor
	Logger *slog.Logger
}

// Sink writes records to a table. New returns *MergingSink instead when a
// merge is configured.
type Sink struct {
	cfg         config.SQLSink
	kind        string // postgres | mysql | sqlite
	pipeline    string
	exactlyOnce bool
	slots       bool                   // offsets per slot (slots.go)
	visitor     connector.FieldVisitor // values arrive undecoded; nil: decoded
	writers     int                    // transactions per batch, split by partition
	log         *slog.Logger
	db          database
	table       tableName
	bk          *bookkeeping
	merge       *orchestrator // nil without merge

	mu      sync.Mutex
	mapper  *mapper         // nil until the table exists
	ignored map[string]bool // fields add_columns does not add; replaced, never changed

	stop  context.CancelFunc // ends the goroutines of group
	group *errgroup.Group    // the connections reporter and the merge orchestrator
}

// New connects, creates the bookkeeping tables it needs and checks the
// table: a missing table (without create_table) or a configured column the
// table lacks is a permanent error naming it. ctx governs only the setup.
//
// A PostgreSQL or MySQL server that cannot be reached yet (down, starting,
// a network failure: whatever classify calls transient) is waited for,
// with a Warn per attempt, until ctx ends; permanent errors (credentials,
// an unknown database, a missing table) fail at once.
func New(ctx context.Context, o Options) (connector.Sink, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &Sink{cfg: o.Config, kind: o.Kind, pipeline: o.Pipeline, exactlyOnce: o.ExactlyOnce, slots: o.ExactlyOnce && o.Slots, visitor: visitorUnlessMapped(o),
		log: o.Logger.With("sink", o.Kind)}
	t, err := parseTableName(o.Config.TableName())
	if err != nil {
		return nil, connector.Permanent(err)
	}
	s.table = t
	s.writers = o.Config.Writers
	if s.writers == 0 { // a library caller that did not load a file
		s.writers = config.SQLDefaultWriters[o.Kind]
	}
	if o.Kind == "sqlite" {
		s.writers = 1
	}
	switch o.Kind {
	case "postgres":
		s.db, err = newPostgres(o.Config.DSN, o.Config.MaxConnections, limitsOf(o.Config))
	case "mysql":
		s.db, err = newMySQL(o.Config.DSN, o.Config.MaxConnections, limitsOf(o.Config))
	case "sqlite":
		s.db, err = newSQLite(ctx, o.Config.Path)
	default:
		return nil, fmt.Errorf("unknown SQL sink %q", o.Kind)
	}
	if err != nil {
		return nil, err
	}
	if err := s.start(ctx); err != nil {
		s.db.close()
		return nil, err
	}
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.stop = stop
	s.group = &errgroup.Group{}
	s.showConnections()
	s.group.Go(func() error { return s.reportConnections(runCtx) })
	if s.merge == nil {
		return s, nil
	}
	s.group.Go(func() error { return s.merge.run(runCtx) })
	return &MergingSink{s}, nil
}

// connectionsEvery is how often sluice_sink_connections is brought up to
// date: database/sql does not tell when it opens or closes a connection.
const connectionsEvery = 5 * time.Second

// reportConnections keeps sluice_sink_connections current until ctx ends.
func (s *Sink) reportConnections(ctx context.Context) error {
	t := time.NewTicker(connectionsEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			s.showConnections()
		}
	}
}

func (s *Sink) showConnections() {
	metrics.SinkConnections.WithLabelValues(s.pipeline, s.kind).Set(float64(s.db.openConnections()))
}

// start connects to a server and sets up, again while the errors are
// transient (setup is idempotent); SQLite is set up once.
func (s *Sink) start(ctx context.Context) error {
	srv, ok := s.db.(server)
	if !ok {
		return s.setup(ctx)
	}
	var last error // the server's, not the cancellation's
	err := retryTransient(ctx, s.db, s.log.With("host", srv.addr()), "connecting to the database", func() error {
		err := srv.connect(ctx)
		if err == nil {
			err = s.setup(ctx)
		}
		if err != nil && ctx.Err() == nil {
			last = err
		}
		return err
	})
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("waiting for %s at %s: the database could not be reached before the wait was stopped (%w); last error: %w",
			s.db.dialect().name, srv.addr(), ctx.Err(), cmp.Or(last, err))
	}
	return err
}

func (s *Sink) setup(ctx context.Context) error {
	s.bk = newBookkeeping(s.db.dialect(), s.table.schema, s.pipeline)
	if s.exactlyOnce || s.cfg.Merge != nil {
		if err := s.bk.setup(ctx, s.db, s.table.String(), s.cfg.Merge != nil); err != nil {
			return wrap(s.db, "setting up bookkeeping tables", err)
		}
	}
	if m := s.cfg.Merge; m != nil {
		o, err := newOrchestrator(s, *m)
		if err != nil {
			return connector.Permanent(err)
		}
		s.merge = o
	}
	t, err := s.db.describe(ctx, s.table)
	if err != nil {
		return wrap(s.db, "describing table "+s.table.String(), err)
	}
	if t == nil {
		if !s.cfg.CreateTable {
			return connector.Permanent(fmt.Errorf("table %s does not exist; create it, or set create_table: true to create it from the first record", s.table))
		}
		return nil // created on the first Write, from its first record
	}
	return s.useTable(t)
}

func (s *Sink) useTable(t *table) error {
	needBatch := s.cfg.Merge != nil && s.cfg.Merge.Mode == config.MergeContinuous
	m, err := newMapper(t, &s.cfg, needBatch, s.db.adapter, s.log)
	if m != nil {
		m.visitor = s.visitor
		m.evolve = s.cfg.AddsColumns()
		m.ignored = s.ignored
	}
	if err != nil {
		return connector.Permanent(err)
	}
	s.mapper = m
	return nil
}

// ready returns the mapper, creating the table from batch first when
// create_table is set and it does not exist yet. After a merge failed for
// good it returns that failure (permanent).
func (s *Sink) ready(ctx context.Context, batch []*connector.Record) (*mapper, error) {
	if s.merge != nil {
		if err := s.merge.failure(); err != nil {
			return nil, err // the staged rows cannot be merged: stop
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mapper != nil {
		return s.mapper, nil
	}
	t, err := s.db.describe(ctx, s.table)
	if err != nil {
		return nil, wrap(s.db, "describing table "+s.table.String(), err)
	}
	if t == nil {
		if err := s.createFrom(ctx, batch); err != nil {
			return nil, err
		}
		if t, err = s.db.describe(ctx, s.table); err != nil || t == nil {
			return nil, wrap(s.db, "describing table "+s.table.String(), errors.Join(err, errors.New("not found after creating it")))
		}
	}
	if err := s.useTable(t); err != nil {
		return nil, err
	}
	return s.mapper, nil
}

// visitorUnlessMapped is o.Fields, unless columns maps fields explicitly
// (paths into nested records need the decoded map).
func visitorUnlessMapped(o Options) connector.FieldVisitor {
	if o.Config.Columns != nil {
		return nil
	}
	return o.Fields
}

// VisitsFields implements connector.FieldVisitorSink: with a FieldVisitor
// and no explicit columns mapping, the mapper places each field straight
// into its column instead of building a map per record.
func (s *Sink) VisitsFields() bool { return s.visitor != nil }

// LoadOffsets implements connector.OffsetStore: the next offsets stored
// with the rows (delivery: exactly_once).
func (s *Sink) LoadOffsets(ctx context.Context, topic string, partitions []int32) (map[int32]int64, error) {
	if !s.exactlyOnce {
		return nil, nil
	}
	var out map[int32]int64
	err := retryTransient(ctx, s.db, s.log, "loading offsets", func() error {
		all, err := s.bk.loadOffsets(ctx, s.db, topic)
		out = all
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("loading offsets of %s from %s: %w", topic, s.bk.offsets, err)
	}
	want := make(map[int32]int64, len(partitions))
	for _, p := range partitions {
		if n, ok := out[p]; ok {
			want[p] = n
		}
	}
	return s.loadSlotAware(ctx, topic, partitions, want)
}

// Close stops the merge orchestrator (a merge in progress is rolled back
// and runs again later), closes the connections and removes the sink's
// sluice_sink_connections series.
func (s *Sink) Close(context.Context) error {
	s.stop()
	_ = s.group.Wait()
	metrics.SinkConnections.DeleteLabelValues(s.pipeline, s.kind)
	s.db.close()
	return nil
}

// MergingSink is a Sink with a merge procedure: it also implements
// connector.Merger and connector.Controllable.
type MergingSink struct{ *Sink }

// SetController implements connector.Controllable: pause mode pauses the
// pipeline through it.
func (m *MergingSink) SetController(c connector.Controller) { m.merge.setController(c) }

// Merges implements connector.Merger.
func (m *MergingSink) Merges() []connector.MergeInfo { return m.merge.history.list() }

// MergeNow implements connector.Merger.
func (m *MergingSink) MergeNow(ctx context.Context) error { return m.merge.mergeNow(ctx) }

var (
	_ connector.OffsetStore      = (*Sink)(nil)
	_ connector.FieldVisitorSink = (*Sink)(nil)
	_ connector.Preparer         = (*Sink)(nil)
	_ connector.Merger           = (*MergingSink)(nil)
	_ connector.Controllable     = (*MergingSink)(nil)
)
