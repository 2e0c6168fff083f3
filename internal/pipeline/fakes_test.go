package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/sluice-dev/sluice/internal/connector"
)

// memSource serves a fixed list of records to however many readers ask;
// every record is handed out once. It remembers acks.
type memSource struct {
	mu      sync.Mutex
	records []*connector.Record
	next    int
	acked   map[int64]int // offset -> times acked
}

func newMemSource(n int, value func(i int) string) *memSource {
	s := &memSource{acked: map[int64]int{}}
	for i := 0; i < n; i++ {
		s.records = append(s.records, &connector.Record{Topic: "t", Partition: int32(i % 3), Offset: int64(i), Value: []byte(value(i))})
	}
	return s
}

func (s *memSource) OpenReader(context.Context, string) (connector.Reader, error) {
	return &memReader{s: s}, nil
}

func (s *memSource) ackedCount() (distinct, total int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.acked {
		total += n
	}
	return len(s.acked), total
}

type memReader struct{ s *memSource }

func (r *memReader) Read(ctx context.Context, max int) ([]*connector.Record, error) {
	r.s.mu.Lock()
	if r.s.next < len(r.s.records) {
		end := min(r.s.next+max, len(r.s.records))
		out := r.s.records[r.s.next:end]
		r.s.next = end
		r.s.mu.Unlock()
		return out, nil
	}
	r.s.mu.Unlock()
	<-ctx.Done()
	return nil, ctx.Err()
}

func (r *memReader) Ack(recs []*connector.Record) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	for _, rec := range recs {
		r.s.acked[rec.Offset]++
	}
}

func (r *memReader) Close(context.Context) error { return nil }

// memSink stores what it is given; failFirst makes the first writes fail
// transiently; reject makes it reject records as bad input; block holds
// writes until closed.
type memSink struct {
	mu        sync.Mutex
	written   []*connector.Record
	batches   []int
	failFirst atomic.Int32
	reject    func(*connector.Record) bool
	block     chan struct{}
	writing   atomic.Int32
	onWrite   func()
}

func (s *memSink) Write(ctx context.Context, batch []*connector.Record) error {
	s.writing.Add(1)
	defer s.writing.Add(-1)
	if s.onWrite != nil {
		s.onWrite()
	}
	if s.block != nil {
		select {
		case <-s.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if s.failFirst.Load() > 0 {
		s.failFirst.Add(-1)
		return errors.New("database is down")
	}
	var bad []*connector.RecordError
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range batch {
		if s.reject != nil && s.reject(r) {
			bad = append(bad, &connector.RecordError{Record: r, Reason: "type", Err: fmt.Errorf("column price: not a number")})
			continue
		}
		s.written = append(s.written, r)
	}
	s.batches = append(s.batches, len(batch))
	if len(bad) > 0 {
		return &connector.BatchError{Failed: bad}
	}
	return nil
}

func (s *memSink) Close(context.Context) error { return nil }

func (s *memSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.written)
}

// memDLQ stores dead-lettered records with their reasons.
type memDLQ struct {
	mu      sync.Mutex
	records []*connector.Record
	reasons []error
	refuse  error // returned by every Send when set
	tries   int
}

func (d *memDLQ) Send(_ context.Context, rec *connector.Record, reason error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.tries++
	if d.refuse != nil {
		return d.refuse
	}
	d.records = append(d.records, rec)
	d.reasons = append(d.reasons, reason)
	return nil
}

func (d *memDLQ) Close(context.Context) error { return nil }

// rejectDecoder marks values "bad" as bad input.
type rejectDecoder struct{}

func (rejectDecoder) Decode(_ context.Context, r *connector.Record) error {
	if string(r.Value) == "bad" {
		return &connector.RecordError{Record: r, Reason: "json", Err: errors.New("invalid character 'b'")}
	}
	return nil
}

// prepSink is a memSink with a connector.Preparer stage: Prepare records
// which batch it saw, WritePrepared checks it is handed that result.
type prepSink struct {
	memSink
	prepared   atomic.Int32
	mismatched atomic.Int32
	unprepared atomic.Int32
}

type prepResult struct{ first *connector.Record }

func (s *prepSink) Prepare(batch []*connector.Record) any {
	s.prepared.Add(1)
	return &prepResult{first: batch[0]}
}

func (s *prepSink) WritePrepared(ctx context.Context, batch []*connector.Record, prepared any) error {
	switch pr, _ := prepared.(*prepResult); {
	case pr == nil:
		s.unprepared.Add(1)
	case pr.first != batch[0]:
		s.mismatched.Add(1)
	}
	return s.Write(ctx, batch)
}

// fieldsDecoder gives every record three decoded fields.
type fieldsDecoder struct{}

func (fieldsDecoder) Decode(_ context.Context, r *connector.Record) error {
	r.Fields = map[string]any{"id": 1, "name": "n", "price": 1}
	return nil
}
