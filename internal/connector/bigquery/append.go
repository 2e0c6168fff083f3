package bigquery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"time"

	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/metrics"
)

// maxAppendBytes keeps one AppendRows request under BigQuery's 10 MB
// limit, with room for the writer schema and per-row framing.
const maxAppendBytes = 9 << 20

// rowOverhead is what a row costs in the request beside its bytes.
const rowOverhead = 8

// appendUnit is one AppendRows request: rows of one table, encoded with
// one version's descriptor, and the records they came from (same index).
type appendUnit struct {
	tv    *tableVersion
	recs  []*connector.Record
	rows  [][]byte
	bytes int
}

// outcomeKind is what to do after an append.
type outcomeKind int

const (
	appended     outcomeKind = iota
	rowErrors                // some rows refused; BigQuery wrote none of the request
	rejected                 // the request refused as invalid: every row is bad input
	permanent                // retrying cannot help: stop the pipeline
	transient                // retry after a backoff
	quotaRefused             // the stream was refused for the connection quota
	writerBroken             // reopen the writer, then retry
	schemaStale              // the table's schema is not what we encoded for
	tableMissing             // the table is gone
)

type outcome struct {
	kind      outcomeKind
	err       error
	code      codes.Code
	w         *writer
	rowErrors []*storagepb.RowError
	ambiguous bool // sent, outcome unknown: retrying may duplicate the rows
}

// appendUnit sends u until every row is appended or refused as bad input,
// retrying transient failures (quota, unavailable, connection lost,
// deadline) with exponential backoff and jitter, without ever opening
// more connections than the client's bound. It returns an error only
// when ctx ends or for a failure retrying cannot fix.
func (s *Sink) appendUnit(ctx context.Context, u *appendUnit, bad *badRecords) error {
	bo := backoff{}
	for {
		o := s.attempt(ctx, u)
		switch o.kind {
		case appended:
			s.stats.rows.Add(int64(len(u.rows)))
			metrics.BigQueryRowsAppended.WithLabelValues(s.pipeline).Add(float64(len(u.rows)))
			metrics.BigQueryAppends.WithLabelValues(s.pipeline, "ok").Inc()
			return nil
		case rowErrors:
			metrics.BigQueryAppends.WithLabelValues(s.pipeline, "row_errors").Inc()
			next := s.splitRowErrors(u, o.rowErrors, bad)
			if next == nil {
				return nil
			}
			u = next // BigQuery wrote none of them: send the good rows again now
			continue
		case rejected:
			metrics.BigQueryAppends.WithLabelValues(s.pipeline, "rejected").Inc()
			for _, r := range u.recs {
				bad.add(&connector.RecordError{Record: r, Reason: "rejected", Err: fmt.Errorf("BigQuery refused the append to table %s: %w", u.tv.name, o.err)})
			}
			return nil
		case permanent:
			return connector.Permanent(fmt.Errorf("appending to table %s: %w", u.tv.name, o.err))
		}
		if ctx.Err() != nil {
			return fmt.Errorf("appending %d rows to table %s: %w (last error: %v)", len(u.rows), u.tv.name, ctx.Err(), o.err)
		}
		metrics.BigQueryAppends.WithLabelValues(s.pipeline, "retry").Inc()
		metrics.BigQueryAppendRetries.WithLabelValues(s.pipeline, o.code.String()).Inc()
		s.stats.retries.Add(1)
		if o.ambiguous {
			s.stats.possibleDuplicates.Add(int64(len(u.rows)))
			metrics.BigQueryPossibleDuplicates.WithLabelValues(s.pipeline).Add(float64(len(u.rows)))
		}
		switch o.kind {
		case quotaRefused:
			s.client.quotaRefused(ctx, o.w.gen, o.err)
		case writerBroken:
			s.writers.discard(u.tv, o.w)
		case schemaStale, tableMissing:
			// Encode again for what the table is now, then send that.
			if o.kind == tableMissing {
				s.tables.forget(u.tv)
			} else if tv, err := s.tables.refresh(ctx, u.tv); err == nil && tv == u.tv {
				// The table is as we thought: the request itself is bad.
				for _, r := range u.recs {
					bad.add(&connector.RecordError{Record: r, Reason: "rejected", Err: fmt.Errorf("BigQuery refused the append to table %s: %w", u.tv.name, o.err)})
				}
				return nil
			}
			if err := bo.wait(ctx); err != nil {
				return fmt.Errorf("appending to table %s: %w (last error: %v)", u.tv.name, err, o.err)
			}
			units, err := s.prepare(ctx, u.tv.name, u.recs, bad)
			if err != nil {
				return err
			}
			for _, next := range units {
				if err := s.appendUnit(ctx, next, bad); err != nil {
					return err
				}
			}
			return nil
		}
		level := s.log.Debug
		if bo.attempt >= 3 {
			level = s.log.Warn
		}
		level("appending to BigQuery; retrying", "table", u.tv.name, "rows", len(u.rows), "attempt", bo.attempt+1, "err", o.err)
		if err := bo.wait(ctx); err != nil {
			return fmt.Errorf("appending %d rows to table %s: %w (last error: %v)", len(u.rows), u.tv.name, err, o.err)
		}
	}
}

// attempt sends u once and waits for its result, within append_timeout.
func (s *Sink) attempt(ctx context.Context, u *appendUnit) outcome {
	w, err := s.writers.acquire(u.tv)
	if err != nil {
		o := classify(ctx, err, false, false)
		if o.kind == writerBroken || o.kind == quotaRefused {
			o.kind = transient // no writer to discard or blame yet
		}
		return o
	}
	defer s.writers.release(u.tv, w)
	actx, cancel := context.WithTimeout(ctx, s.cfg.AppendTimeout)
	defer cancel()
	start := time.Now()
	res, err := w.ms.AppendRows(actx, u.rows)
	if err != nil {
		o := classify(ctx, err, false, false)
		o.w = w
		return o
	}
	resp, err := res.FullResponse(actx)
	metrics.BigQueryAppendSeconds.WithLabelValues(s.pipeline).Observe(time.Since(start).Seconds())
	s.stats.appends.Add(1)
	if err == nil {
		return outcome{kind: appended}
	}
	if rowErrs := resp.GetRowErrors(); len(rowErrs) > 0 {
		return outcome{kind: rowErrors, err: err, rowErrors: rowErrs}
	}
	o := classify(ctx, err, true, resp != nil)
	o.w = w
	return o
}

// classify decides what an append error means. sent: the request left;
// answered: BigQuery's response carried the error (so it wrote nothing).
func classify(ctx context.Context, err error, sent, answered bool) outcome {
	lost := sent && !answered // the outcome is unknown
	switch {
	case ctx.Err() != nil:
		return outcome{kind: transient, err: err, code: codes.Canceled}
	case errors.Is(err, context.DeadlineExceeded):
		return outcome{kind: transient, err: fmt.Errorf("no result within append_timeout: %w", err), code: codes.DeadlineExceeded, ambiguous: lost}
	case errors.Is(err, io.EOF), errors.Is(err, context.Canceled):
		return outcome{kind: writerBroken, err: err, code: codes.Unavailable, ambiguous: lost}
	}
	st, ok := status.FromError(err)
	if !ok {
		return outcome{kind: writerBroken, err: err, code: codes.Unknown, ambiguous: lost}
	}
	o := outcome{err: err, code: st.Code(), ambiguous: lost}
	switch st.Code() {
	case codes.ResourceExhausted:
		o.kind = transient
		if strings.Contains(st.Message(), "concurrent connections") {
			o.kind, o.ambiguous = quotaRefused, false // refused when opened: nothing read
		}
	case codes.NotFound:
		o.kind = tableMissing
	case codes.InvalidArgument:
		o.kind, o.ambiguous = rejected, false
		if schemaMismatch(st) {
			o.kind = schemaStale
		}
	case codes.PermissionDenied, codes.Unauthenticated, codes.Unimplemented:
		o.kind = permanent
	default: // UNAVAILABLE, ABORTED, INTERNAL, CANCELLED, FAILED_PRECONDITION, ...
		o.kind = transient
	}
	return o
}

// schemaMismatch reports an append refused because the writer schema does
// not fit the table (the table changed under us).
func schemaMismatch(st *status.Status) bool {
	for _, d := range st.Details() {
		if se, ok := d.(*storagepb.StorageError); ok {
			switch se.GetCode() {
			case storagepb.StorageError_SCHEMA_MISMATCH_EXTRA_FIELDS, storagepb.StorageError_TABLE_NOT_FOUND:
				return true
			}
		}
	}
	msg := st.Message()
	return strings.Contains(msg, "Input schema has more fields") || strings.Contains(msg, "proto field mismatched")
}

// splitRowErrors sends the refused rows to bad and returns the unit of
// the others, nil when none is left.
func (s *Sink) splitRowErrors(u *appendUnit, errs []*storagepb.RowError, bad *badRecords) *appendUnit {
	refused := make(map[int64]string, len(errs))
	for _, e := range errs {
		if e.GetIndex() >= 0 && e.GetIndex() < int64(len(u.rows)) {
			refused[e.GetIndex()] = e.GetMessage()
		}
	}
	if len(refused) == 0 { // nothing we can point at: every row is suspect
		refused = make(map[int64]string, len(u.rows))
		for i := range u.rows {
			refused[int64(i)] = errs[0].GetMessage()
		}
	}
	next := &appendUnit{tv: u.tv}
	for i, row := range u.rows {
		if msg, ok := refused[int64(i)]; ok {
			bad.add(&connector.RecordError{Record: u.recs[i], Reason: "row", Err: fmt.Errorf("BigQuery refused the row for table %s: %s", u.tv.name, msg)})
			continue
		}
		next.recs = append(next.recs, u.recs[i])
		next.rows = append(next.rows, row)
		next.bytes += len(row) + rowOverhead
	}
	s.stats.rowErrors.Add(int64(len(refused)))
	if len(next.rows) == 0 {
		return nil
	}
	return next
}

// backoff is exponential with full jitter: 100ms doubling to 10s.
type backoff struct{ attempt int }

func (b *backoff) next() time.Duration {
	d := 100 * time.Millisecond << min(b.attempt, 7)
	b.attempt++
	return time.Duration(rand.Int64N(int64(min(d, 10*time.Second))) + 1)
}

// wait sleeps for the next step, or until ctx is done.
func (b *backoff) wait(ctx context.Context) error {
	t := time.NewTimer(b.next())
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
