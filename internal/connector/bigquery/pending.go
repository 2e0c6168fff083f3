package bigquery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"

	bq "cloud.google.com/go/bigquery"
	storage "cloud.google.com/go/bigquery/storage/apiv1"
	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

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
// version) at explicit offsets and finalizes them. Each AppendRows call
// holds one of the process's pending slots; creating and finalizing the
// streams (unary calls) does not, so the tables of a batch overlap there.
// Rows BigQuery refuses go to bad and fail the table: its streams are
// left uncommitted (BigQuery drops them) and its records are written
// again by the retry. Any other failure starts the table over on new
// streams, until ctx ends.
func (s *Sink) appendPending(ctx context.Context, tb *tableBatch, bad *badRecords) error {
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
// whose rows they index. It drives the Storage Write API itself: a
// PENDING stream is written once, by one AppendRows call, so what
// managedwriter adds (reconnecting, multiplexing, a writer with its own
// schema copy per stream) is only cost here; a broken call starts the
// attempt over on a new stream instead.
func (s *Sink) tryPending(ctx context.Context, tb *tableBatch) ([]string, outcome, *appendUnit) {
	raw, err := s.client.pendingClient()
	if err != nil {
		return nil, outcome{kind: permanent, err: err}, nil
	}
	var streams []string
	for _, group := range byVersion(tb.units) {
		ws, err := raw.CreateWriteStream(ctx, &storagepb.CreateWriteStreamRequest{
			Parent:      group[0].tv.parent,
			WriteStream: &storagepb.WriteStream{Type: storagepb.WriteStream_PENDING},
		})
		if err != nil {
			return nil, classify(ctx, err, false, false), nil
		}
		o, failed := s.appendUnits(ctx, raw, ws.GetName(), group)
		if o.kind != appended {
			return nil, o, failed
		}
		if _, err := raw.FinalizeWriteStream(ctx, &storagepb.FinalizeWriteStreamRequest{Name: ws.GetName()}); err != nil {
			return nil, classify(ctx, err, true, false), nil
		}
		streams = append(streams, ws.GetName())
	}
	return streams, outcome{kind: appended}, nil
}

// appendUnits sends units back to back on one AppendRows call, at
// increasing explicit offsets (a request BigQuery already holds is
// answered ALREADY_EXISTS, never written twice), the writer schema in the
// first request only, then waits for every result and ends the call.
func (s *Sink) appendUnits(ctx context.Context, raw *storage.BigQueryWriteClient, stream string, units []*appendUnit) (outcome, *appendUnit) {
	select {
	case s.eos.slots <- struct{}{}:
	case <-ctx.Done():
		return classify(ctx, ctx.Err(), false, false), nil
	}
	defer func() { <-s.eos.slots }()
	actx, cancel := context.WithTimeout(ctx, s.cfg.AppendTimeout)
	defer cancel() // also ends the call when we leave before its end
	call, err := raw.AppendRows(actx)
	if err != nil {
		return classify(ctx, err, false, false), nil
	}
	var offset int64
	for i, u := range units {
		req := &storagepb.AppendRowsRequest{
			Offset: wrapperspb.Int64(offset),
			Rows: &storagepb.AppendRowsRequest_ProtoRows{ProtoRows: &storagepb.AppendRowsRequest_ProtoData{
				Rows: &storagepb.ProtoRows{SerializedRows: u.rows},
			}},
		}
		if i == 0 {
			req.WriteStream, req.TraceId = stream, "sluice"
			req.GetProtoRows().WriterSchema = &storagepb.ProtoSchema{ProtoDescriptor: u.tv.dp}
		}
		if err := call.Send(req); err != nil {
			// The call ended; Recv tells why.
			if _, rerr := call.Recv(); rerr != nil && !errors.Is(rerr, io.EOF) {
				err = rerr
			}
			return classify(ctx, err, i > 0, false), nil
		}
		offset += int64(len(u.rows))
	}
	if err := call.CloseSend(); err != nil {
		return classify(ctx, err, true, false), nil
	}
	for i := range units {
		resp, err := call.Recv()
		s.stats.appends.Add(1)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF // ended before answering everything
			}
			return classify(ctx, err, true, false), nil
		}
		st := resp.GetError()
		if rowErrs := resp.GetRowErrors(); len(rowErrs) > 0 {
			err := errors.New("BigQuery refused rows")
			if st != nil {
				err = status.ErrorProto(st)
			}
			return outcome{kind: rowErrors, err: err, rowErrors: rowErrs}, units[i]
		}
		if st == nil || codes.Code(st.GetCode()) == codes.AlreadyExists {
			continue // written, now or by an earlier request
		}
		return classify(ctx, status.ErrorProto(st), true, true), nil
	}
	// Everything is answered; wait for the call's end, so that the
	// connection it counts as is given back before the slot is.
	call.Recv()
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
