// Package bigquery is the BigQuery sink: records appended through the
// Storage Write API's default stream (at-least-once) into tables named by
// a template over the record, over a small, bounded number of connections
// whatever the number of tables.
//
// One managedwriter client per process (per project, endpoint and
// connection bound) multiplexes the appends of every table and every
// bigquery pipeline over at most max_connections TCP connections and
// AppendRows streams. Exactly-once (PENDING streams, see exactlyOnce)
// goes through a raw Storage Write client of its own, made on first use,
// with as many connections and at most max_connections AppendRows calls
// open at once. Rows are protocol buffers built from a descriptor
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
	"strings"
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
	// JSON, when set (the codec's decoder, for json values without
	// transforms, routes or a timestamp field), makes the sink take values
	// undecoded and write JSON objects straight into proto rows (see
	// jsonrow.go), decoding with it only the records the direct path
	// leaves to the map path. Default nil.
	JSON connector.Decoder
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
	visitor  valueVisitor      // Avro values arrive undecoded; nil: decoded
	json     connector.Decoder // JSON values arrive undecoded; nil: decoded
	// jsonTemplate: the table template reads .Value, so JSON records are
	// decoded before they are routed: only the members templateFields
	// names (then the direct path writes them), or whole when it is nil.
	jsonTemplate   bool
	templateFields []string
	eos            *exactlyOnce // nil: at least once

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
		visitor: directVisitor(o.Fields, cfg.Table), json: o.JSON,
		jsonTemplate: strings.Contains(cfg.Table, ".Value"),
		tables:       &tables{cfg: cfg, rest: client.rest, log: log, pipeline: o.Pipeline, m: map[string]*tableState{}},
		writers:      &writers{client: client, pipeline: o.Pipeline, life: life, open: map[*tableVersion]struct{}{}},
	}
	if s.jsonTemplate {
		if fields, ok := templateValueFields(cfg.Table); ok {
			s.templateFields = fields
		}
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
		partial := false // rec.Fields holds only what the template reads
		if s.visiting() && rec.Value != nil {
			if err := s.learnSchema(ctx, rec); err != nil {
				var re *connector.RecordError
				if !errors.As(err, &re) {
					re = &connector.RecordError{Record: rec, Reason: "value", Err: err}
				}
				bad.add(re)
				continue
			}
		} else if s.json != nil && rec.Fields == nil && rec.Value != nil {
			if isJSONNull(rec.Value) {
				bad.add(noValue(rec))
				continue
			}
			if s.templateFields != nil {
				rec.Fields, partial = jsonMembers(rec.Value, s.templateFields)
			}
			if s.jsonTemplate && !partial {
				if err := s.decodeJSON(ctx, rec); err != nil {
					bad.add(asRecordError(rec, "value", err))
					continue
				}
			}
		} else if rec.Fields == nil {
			bad.add(noValue(rec))
			continue
		}
		rendered, err := s.tmpl.Render(rec)
		if partial {
			rec.Fields = nil // the direct path writes the value
			if err != nil {
				// Malformed JSON is the decoder's error, as with decoded
				// records, not the template's.
				if derr := s.decodeJSON(ctx, rec); derr != nil {
					err = derr
				}
			}
		}
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
	var refused []*connector.RecordError
	if s.json != nil && s.tables.state(name).cur.Load() == nil {
		// The table is read, or created with the columns of these
		// records: decoded, as the map path has them (once per table).
		recs, refused = s.decodeAll(ctx, recs)
	}
	tv, err := s.tables.current(rctx, name, recs)
	if err != nil {
		return nil, nil, err
	}
	tv, rejectedRecs, err := s.tables.fit(rctx, name, tv, recs)
	if err != nil {
		return nil, nil, err
	}
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
	units, encBad, err := s.encode(ctx, tv, keep)
	if err != nil {
		return nil, nil, err
	}
	return units, append(refused, encBad...), nil
}

// decodeAll decodes the undecoded JSON records of recs; it returns those
// that decoded and the errors of the others.
func (s *Sink) decodeAll(ctx context.Context, recs []*connector.Record) ([]*connector.Record, []*connector.RecordError) {
	keep := make([]*connector.Record, 0, len(recs))
	var bad []*connector.RecordError
	for _, r := range recs {
		if r.Fields == nil {
			if err := s.decodeJSON(ctx, r); err != nil {
				bad = append(bad, asRecordError(r, "value", err))
				continue
			}
		}
		keep = append(keep, r)
	}
	return keep, bad
}

// encode encodes recs with tv's descriptor into appends under the request
// size limit; records whose values fit no column are returned as bad.
// JSON records the direct path leaves to the map path are decoded and the
// table grown for the fields they bring (every record is then encoded
// again for the new version), and keep their place among the rows.
func (s *Sink) encode(ctx context.Context, tv *tableVersion, recs []*connector.Record) ([]*appendUnit, []*connector.RecordError, error) {
	rows, errs := make([][]byte, len(recs)), make([]error, len(recs))
	s.encodeRows(ctx, tv, recs, rows, errs, func(int) bool { return true })
	for s.json != nil {
		var misfits []*connector.Record
		for i, r := range recs {
			if errs[i] == errJSONMisfit {
				if errs[i] = s.decodeJSON(ctx, r); errs[i] == nil {
					misfits = append(misfits, r)
				}
			}
		}
		if len(misfits) == 0 {
			break
		}
		// Each record is decoded once, then encoded by the map path: the
		// loop ends.
		fctx, cancel := context.WithTimeout(ctx, s.cfg.AppendTimeout)
		next, rejected, err := s.tables.fit(fctx, tv.name, tv, misfits)
		cancel()
		if err != nil {
			return nil, nil, err
		}
		for i, r := range recs {
			if re := rejected[r]; re != nil {
				errs[i] = re
			}
		}
		redo := func(i int) bool { return errs[i] == nil && rows[i] == nil }
		if next != tv {
			tv = next
			redo = func(i int) bool { return errs[i] == nil }
		}
		s.encodeRows(ctx, tv, recs, rows, errs, redo)
	}
	var (
		units []*appendUnit
		bad   []*connector.RecordError
	)
	cur := &appendUnit{tv: tv}
	for i, r := range recs {
		row, err := rows[i], errs[i]
		var re *connector.RecordError
		if errors.As(err, &re) { // the codec's, or refused columns
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
	return units, bad, nil
}

// encodeRows encodes the records redo picks into rows and errs.
func (s *Sink) encodeRows(ctx context.Context, tv *tableVersion, recs []*connector.Record, rows [][]byte, errs []error, redo func(int) bool) {
	var arena rowArena
	for i, r := range recs {
		if !redo(i) {
			continue
		}
		switch {
		case s.visiting():
			rows[i], errs[i] = arena.encodeVisited(ctx, s, tv.plan, r, len(recs)-i)
		case s.json != nil && r.Fields == nil:
			rows[i], errs[i] = arena.encodeJSON(s, tv.plan, r, len(recs)-i)
		default:
			rows[i], errs[i] = tv.plan.encode(r, s.cfg.Metadata)
		}
	}
}

// noValue is the error of a record without fields to write.
func noValue(rec *connector.Record) *connector.RecordError {
	return &connector.RecordError{Record: rec, Reason: "empty",
		Err: errors.New("the record has no decoded value (a tombstone?): nothing to write to BigQuery")}
}

// asRecordError is err as a *connector.RecordError, with reason if it
// is not one.
func asRecordError(rec *connector.Record, reason string, err error) *connector.RecordError {
	var re *connector.RecordError
	if !errors.As(err, &re) {
		re = &connector.RecordError{Record: rec, Reason: reason, Err: err}
	}
	return re
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
