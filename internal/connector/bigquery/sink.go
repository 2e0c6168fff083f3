// Package bigquery is the BigQuery sink: records appended through the
// Storage Write API's default stream (at-least-once) into tables named by
// a template over the record, over a small, bounded number of connections
// whatever the number of tables.
//
// One managedwriter client per process (per project, endpoint and
// connection bound) multiplexes the appends of every table and every
// bigquery pipeline over at most max_connections TCP connections and
// AppendRows streams. Rows are protocol buffers built from a descriptor
// derived from the table's schema, cached per table and schema version.
// Tables (and the dataset) are created on demand with a schema mapped from
// the record's Avro schema or inferred from its JSON value, and grow
// NULLABLE columns when records bring new fields.
//
// Failures: RESOURCE_EXHAUSTED, UNAVAILABLE, lost connections and appends
// past their deadline are retried inside Write with exponential backoff
// and jitter, so the pipeline slows down rather than failing or opening
// more connections; rows BigQuery refuses one by one (row errors) go to
// on_error with its reason and the other rows of the request are sent
// again. Write returns nil only once BigQuery confirmed every row.
package bigquery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/metrics"
)

// prepareParallelism bounds the tables whose metadata one Write reads or
// changes at once (REST calls, table creation).
const prepareParallelism = 8

// Options configure a Sink.
type Options struct {
	Config   config.BigQuerySink // defaults applied (config.Parse does it)
	Pipeline string
	Logger   *slog.Logger
	// Fields, when set (the codec's decoder, for avro-confluent values
	// without transforms), makes the sink take values undecoded and write
	// them straight into proto rows (see protoencode.go). Default nil:
	// records arrive decoded.
	Fields connector.FieldVisitor
	// ExactlyOnce writes through PENDING streams with offset
	// deduplication (exactlyonce.go) instead of the default stream.
	ExactlyOnce bool
}

// Sink is the bigquery sink. Write may be called concurrently.
type Sink struct {
	cfg      config.BigQuerySink
	pipeline string
	log      *slog.Logger
	tmpl     *connector.NameTemplate
	client   *sharedClient
	tables   *tables
	writers  *writers
	stats    counters
	visitor  valueVisitor // nil: records arrive decoded
	eos      *exactlyOnce // nil: at least once

	stop      context.CancelFunc
	bg        errgroup.Group // the idle-writer reaper
	closeOnce sync.Once
	closeErr  error
}

type counters struct {
	appends, retries, rows, rowErrors, rejected, possibleDuplicates atomic.Int64
	skipped, commits                                                atomic.Int64
}

// Stats is a snapshot of what a Sink did.
type Stats struct {
	Appends            int64 // AppendRows requests answered (successes and failures)
	Retries            int64 // appends sent again after a transient failure
	RowsAppended       int64 // rows BigQuery confirmed
	RowErrors          int64 // rows BigQuery refused one by one
	Rejected           int64 // records sent to on_error, for any reason
	PossibleDuplicates int64 // rows sent again after an append of unknown outcome
	Skipped            int64 // exactly once: records BigQuery already held, not written again
	Commits            int64 // exactly once: tables committed (BatchCommitWriteStreams)
	Writers            int   // tables with an open writer
	ConnectionLimit    int   // AppendRows streams the shared client may open
}

// New checks the configuration and connects lazily: no call is made to
// BigQuery until the first Write.
func New(ctx context.Context, o Options) (*Sink, error) {
	cfg := o.Config
	if o.ExactlyOnce {
		cfg.Metadata = withOffsetColumns(cfg.Metadata)
	}
	tmpl, err := connector.ParseNameTemplate("sink.bigquery.table", cfg.Table)
	if err != nil {
		return nil, connector.Permanent(err)
	}
	if tmpl.IsConstant() {
		if _, err := tableName(cfg.Table); err != nil {
			return nil, connector.Permanent(fmt.Errorf("sink.bigquery.table: %w", err))
		}
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("sink", "bigquery")
	client, err := acquireClient(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	client.streams.show(o.Pipeline)
	life, stop := context.WithCancel(context.WithoutCancel(ctx))
	s := &Sink{
		cfg: cfg, pipeline: o.Pipeline, log: log, tmpl: tmpl, client: client, stop: stop,
		visitor: directVisitor(o.Fields, cfg.Table),
		tables:  &tables{cfg: cfg, rest: client.rest, log: log, pipeline: o.Pipeline, m: map[string]*tableState{}},
		writers: &writers{client: client, pipeline: o.Pipeline, life: life, open: map[*tableVersion]struct{}{}},
	}
	if o.ExactlyOnce {
		s.eos = newExactlyOnce(client.key)
	}
	for _, m := range cfg.Metadata {
		c := *metadataColumns[m]
		s.tables.meta = append(s.tables.meta, &c)
	}
	s.bg.Go(func() error { return s.reapIdle(life) })
	return s, nil
}

// Write appends batch and returns nil once BigQuery confirmed every row;
// a *connector.BatchError lists the records that are bad input (refused
// rows, values that fit no column, names that make no table), all others
// being durable. Transient failures are retried here until ctx ends.
func (s *Sink) Write(ctx context.Context, batch []*connector.Record) error {
	if s.eos != nil {
		return s.writeExactlyOnce(ctx, batch)
	}
	bad := &badRecords{s: s}
	units, err := s.prepareAll(ctx, batch, bad)
	if err != nil {
		return err
	}
	var mu sync.Mutex

	// Units append independently: when one fails, the others' rows are
	// durable, and only the failed units' records are reported not written
	// (so a retry does not append the rest a second time).
	var notWritten []*connector.Record
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.cfg.MaxInFlightAppends * s.client.connectionLimit())
	for _, u := range units {
		g.Go(func() error {
			err := s.appendUnit(gctx, u, bad)
			if err != nil {
				mu.Lock()
				notWritten = append(notWritten, u.recs...)
				mu.Unlock()
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		bad.mu.Lock()
		defer bad.mu.Unlock()
		return &connector.BatchError{Failed: bad.list, NotWritten: connector.Without(notWritten, bad.list), Cause: err}
	}
	return bad.err()
}

// prepareAll routes batch to its tables and prepares each table's
// appends; bad input goes to bad.
func (s *Sink) prepareAll(ctx context.Context, batch []*connector.Record, bad *badRecords) ([]*appendUnit, error) {
	groups, order := s.route(ctx, batch, bad)
	var (
		mu    sync.Mutex
		units []*appendUnit
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(prepareParallelism)
	for _, name := range order {
		recs := groups[name]
		g.Go(func() error {
			us, err := s.prepare(gctx, name, recs, bad)
			mu.Lock()
			units = append(units, us...)
			mu.Unlock()
			return err
		})
	}
	return units, g.Wait()
}

// route groups records by destination table, in order of first use.
func (s *Sink) route(ctx context.Context, batch []*connector.Record, bad *badRecords) (map[string][]*connector.Record, []string) {
	groups := make(map[string][]*connector.Record)
	var order []string
	for _, rec := range batch {
		if s.visiting() && rec.Value != nil {
			if err := s.learnSchema(ctx, rec); err != nil {
				var re *connector.RecordError
				if !errors.As(err, &re) {
					re = &connector.RecordError{Record: rec, Reason: "value", Err: err}
				}
				bad.add(re)
				continue
			}
		} else if rec.Fields == nil {
			bad.add(&connector.RecordError{Record: rec, Reason: "empty",
				Err: errors.New("the record has no decoded value (a tombstone?): nothing to write to BigQuery")})
			continue
		}
		rendered, err := s.tmpl.Render(rec)
		if err != nil {
			var re *connector.RecordError
			if !errors.As(err, &re) {
				re = &connector.RecordError{Record: rec, Reason: "template", Err: err}
			}
			bad.add(re)
			continue
		}
		name, err := tableName(rendered)
		if err != nil {
			bad.add(&connector.RecordError{Record: rec, Reason: "table", Err: fmt.Errorf("table template %q: %w", s.tmpl, err)})
			continue
		}
		if _, ok := groups[name]; !ok {
			order = append(order, name)
		}
		groups[name] = append(groups[name], rec)
	}
	return groups, order
}

// prepare makes the table ready for recs (creating it, adding columns)
// and encodes them into appends. REST failures are retried until ctx
// ends; a table that cannot be written sends its records to on_error (or
// stops the pipeline when the table name is a constant).
func (s *Sink) prepare(ctx context.Context, name string, recs []*connector.Record, bad *badRecords) ([]*appendUnit, error) {
	bo := backoff{}
	for {
		units, refused, err := s.tryPrepare(ctx, name, recs)
		if err == nil {
			for _, re := range refused {
				bad.add(re)
			}
			return units, nil
		}
		var te *tableError
		switch {
		case errors.As(err, &te):
			if s.tmpl.IsConstant() {
				return nil, connector.Permanent(err)
			}
			for _, r := range recs {
				bad.add(&connector.RecordError{Record: r, Reason: "table", Err: err})
			}
			return nil, nil
		case restPermanent(err):
			return nil, connector.Permanent(err)
		case ctx.Err() != nil:
			return nil, fmt.Errorf("preparing table %s: %w (last error: %v)", name, ctx.Err(), err)
		}
		level := s.log.Debug
		if bo.attempt >= 2 {
			level = s.log.Warn
		}
		level("preparing BigQuery table; retrying", "table", name, "attempt", bo.attempt+1, "err", err)
		if werr := bo.wait(ctx); werr != nil {
			return nil, fmt.Errorf("preparing table %s: %w (last error: %v)", name, werr, err)
		}
	}
}

func (s *Sink) tryPrepare(ctx context.Context, name string, recs []*connector.Record) ([]*appendUnit, []*connector.RecordError, error) {
	rctx, cancel := context.WithTimeout(ctx, s.cfg.AppendTimeout)
	defer cancel()
	tv, err := s.tables.current(rctx, name, recs)
	if err != nil {
		return nil, nil, err
	}
	tv, rejectedRecs, err := s.tables.fit(rctx, name, tv, recs)
	if err != nil {
		return nil, nil, err
	}
	var refused []*connector.RecordError
	keep := recs
	if len(rejectedRecs) > 0 {
		keep = make([]*connector.Record, 0, len(recs))
		for _, r := range recs {
			if re := rejectedRecs[r]; re != nil {
				refused = append(refused, re)
			} else {
				keep = append(keep, r)
			}
		}
	}
	units, encBad := s.encode(ctx, tv, keep)
	return units, append(refused, encBad...), nil
}

// encode encodes recs with tv's descriptor into appends under the request
// size limit; records whose values fit no column are returned as bad.
func (s *Sink) encode(ctx context.Context, tv *tableVersion, recs []*connector.Record) ([]*appendUnit, []*connector.RecordError) {
	var (
		units []*appendUnit
		bad   []*connector.RecordError
	)
	cur := &appendUnit{tv: tv}
	var arena rowArena
	for i, r := range recs {
		var (
			row []byte
			err error
		)
		if s.visiting() {
			row, err = arena.encodeVisited(ctx, s, tv.plan, r, len(recs)-i)
		} else {
			row, err = tv.plan.encode(r, s.cfg.Metadata)
		}
		var re *connector.RecordError
		if errors.As(err, &re) { // the codec's: the value's bytes are bad
			bad = append(bad, re)
			continue
		}
		if err != nil {
			bad = append(bad, &connector.RecordError{Record: r, Reason: "type", Err: fmt.Errorf("table %s: %w", tv.name, err)})
			continue
		}
		if len(row)+rowOverhead > maxAppendBytes {
			bad = append(bad, &connector.RecordError{Record: r, Reason: "too-large", Err: fmt.Errorf("table %s: the row is %d bytes, over the %d bytes an append may carry", tv.name, len(row), maxAppendBytes)})
			continue
		}
		if cur.bytes+len(row)+rowOverhead > maxAppendBytes {
			units = append(units, cur)
			cur = &appendUnit{tv: tv}
		}
		cur.recs = append(cur.recs, r)
		cur.rows = append(cur.rows, row)
		cur.bytes += len(row) + rowOverhead
	}
	if len(cur.rows) > 0 {
		units = append(units, cur)
	}
	return units, bad
}

// reapIdle closes the writers of tables no record went to for
// idle_timeout, and forgets those tables.
func (s *Sink) reapIdle(ctx context.Context) error {
	t := time.NewTicker(min(s.cfg.IdleTimeout/2, 30*time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		before := time.Now().Add(-s.cfg.IdleTimeout)
		gone := s.tables.idle(before)
		if n := s.writers.closeIdle(before, gone); n > 0 {
			s.log.Debug("closed idle BigQuery writers", "closed", n, "open", s.writers.count())
		}
	}
}

// Stats returns a snapshot of the sink's counters.
func (s *Sink) Stats() Stats {
	return Stats{
		Appends: s.stats.appends.Load(), Retries: s.stats.retries.Load(), RowsAppended: s.stats.rows.Load(),
		RowErrors: s.stats.rowErrors.Load(), Rejected: s.stats.rejected.Load(),
		PossibleDuplicates: s.stats.possibleDuplicates.Load(),
		Writers:            s.writers.count(), ConnectionLimit: s.client.connectionLimit(),
		Skipped: s.stats.skipped.Load(), Commits: s.stats.commits.Load(),
	}
}

// Close closes the sink's writers, removes its sluice_sink_connections
// series and releases the shared client (the last sink using it closes its
// connections). Writes must have returned.
func (s *Sink) Close(context.Context) error {
	s.closeOnce.Do(func() {
		s.stop()
		_ = s.bg.Wait()
		s.writers.closeAll()
		s.client.streams.hide(s.pipeline)
		s.closeErr = s.client.release()
	})
	return s.closeErr
}

// badRecords collects the records of one Write that go to on_error.
type badRecords struct {
	s    *Sink
	mu   sync.Mutex
	list []*connector.RecordError
}

func (b *badRecords) add(re *connector.RecordError) {
	b.mu.Lock()
	b.list = append(b.list, re)
	b.mu.Unlock()
	b.s.stats.rejected.Add(1)
	metrics.BigQueryRowsRejected.WithLabelValues(b.s.pipeline).Inc()
}

func (b *badRecords) err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.list) == 0 {
		return nil
	}
	return &connector.BatchError{Failed: b.list}
}
