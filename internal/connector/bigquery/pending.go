package bigquery

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	bq "cloud.google.com/go/bigquery"
	"cloud.google.com/go/bigquery/storage/managedwriter"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sluice-dev/sluice/internal/connector"
)

// learnMarks asks BigQuery, for the (table, topic, partition)s of recs
// not known yet, the highest offset committed there (see exactlyOnce for
// why a query). Transient failures are retried until ctx ends.
func (s *Sink) learnMarks(ctx context.Context, table string, recs []*connector.Record) error {
	want := map[string][]int32{}
	s.eos.mu.Lock()
	for _, r := range recs {
		if _, ok := s.eos.marks[markKey{table, r.Topic, r.Partition}]; !ok && !slices.Contains(want[r.Topic], r.Partition) {
			want[r.Topic] = append(want[r.Topic], r.Partition)
		}
	}
	s.eos.mu.Unlock()
	for topic, parts := range want {
		bo := backoff{}
		for {
			marks, err := s.queryMarks(ctx, table, topic)
			if err == nil {
				s.eos.mu.Lock()
				for _, p := range parts {
					m, ok := marks[p]
					if !ok {
						m = -1
					}
					s.eos.marks[markKey{table, topic, p}] = m
				}
				s.eos.mu.Unlock()
				break
			}
			if restPermanent(err) {
				return connector.Permanent(fmt.Errorf("reading the offsets committed to table %s: %w", table, err))
			}
			if ctx.Err() != nil {
				return fmt.Errorf("reading the offsets committed to table %s: %w (last error: %v)", table, ctx.Err(), err)
			}
			s.log.Warn("reading the offsets committed to BigQuery; retrying", "table", table, "attempt", bo.attempt+1, "err", err)
			if werr := bo.wait(ctx); werr != nil {
				return fmt.Errorf("reading the offsets committed to table %s: %w (last error: %v)", table, werr, err)
			}
		}
	}
	return nil
}

// queryMarks returns the highest _sluice_offset per partition of topic in
// table. A table that is gone holds nothing.
func (s *Sink) queryMarks(ctx context.Context, table, topic string) (map[int32]int64, error) {
	rctx, cancel := context.WithTimeout(ctx, s.cfg.AppendTimeout)
	defer cancel()
	q := s.client.rest.Query(fmt.Sprintf("SELECT _sluice_partition, MAX(_sluice_offset) FROM `%s.%s.%s` "+
		"WHERE _sluice_topic = @topic GROUP BY _sluice_partition", s.cfg.Project, s.cfg.Dataset, table))
	q.Parameters = []bq.QueryParameter{{Name: "topic", Value: topic}}
	it, err := q.Read(rctx)
	if httpCode(err) == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	for {
		var row []bq.Value
		err := it.Next(&row)
		if errors.Is(err, iterator.Done) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		p, okP := row[0].(int64)
		o, okO := row[1].(int64)
		if okP && okO {
			out[int32(p)] = o
		}
	}
}

// appendPending writes tb's rows to PENDING streams (one per schema
// version) at explicit offsets and finalizes them, holding one of the
// process's pending slots (an AppendRows connection each) meanwhile.
// Rows BigQuery refuses go to bad and fail the table: its streams are
// left uncommitted (BigQuery drops them) and its records are written
// again by the retry. Any other failure starts the table over on new
// streams, until ctx ends.
func (s *Sink) appendPending(ctx context.Context, tb *tableBatch, bad *badRecords) error {
	select {
	case s.eos.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.eos.slots }()
	bo := backoff{}
	for {
		streams, o, failed := s.tryPending(ctx, tb)
		switch o.kind {
		case appended:
			tb.streams = streams
			return nil
		case rowErrors:
			s.splitRowErrors(failed, o.rowErrors, bad)
			return fmt.Errorf("BigQuery refused rows: %w", o.err)
		case rejected:
			for _, r := range tb.records() {
				bad.add(&connector.RecordError{Record: r, Reason: "rejected", Err: fmt.Errorf("BigQuery refused the append to table %s: %w", tb.name, o.err)})
			}
			return o.err
		case permanent:
			return connector.Permanent(fmt.Errorf("appending to table %s: %w", tb.name, o.err))
		case schemaStale, tableMissing:
			// The engine writes these records again, prepared for what the
			// table is now.
			s.tables.forget(tb.units[0].tv)
			return o.err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("appending to table %s: %w (last error: %v)", tb.name, ctx.Err(), o.err)
		}
		s.stats.retries.Add(1)
		s.log.Warn("appending to a BigQuery pending stream; retrying on a new stream", "table", tb.name, "attempt", bo.attempt+1, "err", o.err)
		if err := bo.wait(ctx); err != nil {
			return fmt.Errorf("appending to table %s: %w (last error: %v)", tb.name, err, o.err)
		}
	}
}

// tryPending makes one attempt: new streams, every unit appended at its
// offset, each stream finalized. With row errors it also returns the unit
// whose rows they index.
func (s *Sink) tryPending(ctx context.Context, tb *tableBatch) ([]string, outcome, *appendUnit) {
	g := s.client.enter()
	defer s.client.leave(g)
	var streams []string
	for _, group := range byVersion(tb.units) {
		ms, err := g.mw.NewManagedStream(ctx, pendingStreamOpts(group[0].tv)...)
		if err != nil {
			return nil, classify(ctx, err, false, false), nil
		}
		o, failed := s.appendUnits(ctx, ms, group)
		if o.kind == appended {
			if _, err := ms.Finalize(ctx); err != nil {
				o = classify(ctx, err, true, false)
			}
		}
		ms.Close()
		if o.kind != appended {
			return nil, o, failed
		}
		streams = append(streams, ms.StreamName())
	}
	return streams, outcome{kind: appended}, nil
}

// appendUnits sends units back to back at increasing offsets, then waits
// for every result. The offsets make a resend by the client's own
// reconnect land once (ALREADY_EXISTS).
func (s *Sink) appendUnits(ctx context.Context, ms *managedwriter.ManagedStream, units []*appendUnit) (outcome, *appendUnit) {
	actx, cancel := context.WithTimeout(ctx, s.cfg.AppendTimeout)
	defer cancel()
	results := make([]*managedwriter.AppendResult, 0, len(units))
	var offset int64
	for _, u := range units {
		res, err := ms.AppendRows(actx, u.rows, managedwriter.WithOffset(offset))
		if err != nil {
			return classify(ctx, err, false, false), nil
		}
		results = append(results, res)
		offset += int64(len(u.rows))
	}
	for i, res := range results {
		resp, err := res.FullResponse(actx)
		s.stats.appends.Add(1)
		if err == nil {
			continue
		}
		if rowErrs := resp.GetRowErrors(); len(rowErrs) > 0 {
			return outcome{kind: rowErrors, err: err, rowErrors: rowErrs}, units[i]
		}
		if status.Code(err) == codes.AlreadyExists {
			continue // the client resent what had landed
		}
		return classify(ctx, err, true, resp != nil), nil
	}
	return outcome{kind: appended}, nil
}

// byVersion splits units by table version, in order: one stream each.
func byVersion(units []*appendUnit) [][]*appendUnit {
	var out [][]*appendUnit
	for _, u := range units {
		if n := len(out); n > 0 && out[n-1][0].tv == u.tv {
			out[n-1] = append(out[n-1], u)
			continue
		}
		out = append(out, []*appendUnit{u})
	}
	return out
}
