package pipeline

import (
	"errors"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/connector"
)

// offsetTransformer stands in for the transforms of a pipeline file: it
// drops records whose offset is a multiple of 3, fails on offset 5, and
// gives every kept record a longer key and a header (which changes what
// the record weighs in flight).
type offsetTransformer struct{}

func (offsetTransformer) Transform(r *connector.Record) (bool, error) {
	switch {
	case r.Offset%3 == 0:
		return false, nil
	case r.Offset == 5:
		return false, &connector.RecordError{Record: r, Reason: "transform", Err: errors.New("transforms[1].set.x: no such key: amount")}
	}
	r.Key = []byte(strings.Repeat("k", 100))
	r.Headers = append(r.Headers, connector.Header{Key: "source", Value: []byte("web")})
	return true, nil
}

// Filtered records are acked once without being written, counted as
// filtered; a record a transform fails on goes where on_error says; what
// is in flight goes back to zero although transforms changed the records'
// sizes. Reads of 1,000 records are decoded and transformed on several
// goroutines (prepare), and settle the same way.
func TestTransformerFiltersAndRoutesFailuresAndAcksEachRecordOnce(t *testing.T) {
	for _, tc := range []struct {
		name     string
		n, batch int
	}{
		{"small reads", 90, 10},
		{"reads spread over goroutines", 3000, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) { checkTransformerOutcomes(t, tc.n, tc.batch) })
	}
}

func checkTransformerOutcomes(t *testing.T, n, batch int) {
	t.Helper()
	src := newMemSource(n, plain)
	sink := &memSink{}
	dlq := &memDLQ{}
	p, err := New(Options{Name: "t", Source: src, Sink: sink, Transformer: offsetTransformer{}, Consumers: 2,
		BatchRecords: batch, OnError: OnErrorDLQ, DeadLetter: dlq, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := runUntil(t, p, "every record acked", func() bool { d, _ := src.ackedCount(); return d == n }); err != nil {
		t.Fatal(err)
	}
	if _, total := src.ackedCount(); total != n {
		t.Fatalf("%d acks for %d records; each record must be acked once", total, n)
	}
	sink.mu.Lock()
	for _, r := range sink.written {
		if r.Offset%3 == 0 || r.Offset == 5 {
			t.Errorf("offset %d was written", r.Offset)
		}
		if len(r.Key) != 100 || string(r.HeaderValue("source")) != "web" {
			t.Errorf("offset %d written without its transform: key %q", r.Offset, r.Key)
		}
	}
	written := len(sink.written)
	sink.mu.Unlock()
	if want := n - (n+2)/3 - 1; written != want {
		t.Fatalf("%d records written, want %d", written, want)
	}
	if len(dlq.records) != 1 || dlq.records[0].Offset != 5 || !strings.Contains(dlq.reasons[0].Error(), "transforms[1].set.x") {
		t.Fatalf("dead letters %v (%v); want offset 5 with the step's error", dlq.records, dlq.reasons)
	}
	st := p.Status()
	if st.Filtered != int64(n+2)/3 || st.RecordsIn != int64(n) || st.RecordsOut != int64(written) || st.DeadLettered != 1 {
		t.Fatalf("status: in %d, filtered %d, out %d, dead-lettered %d", st.RecordsIn, st.Filtered, st.RecordsOut, st.DeadLettered)
	}
	if recs, bytes := p.limiter.usage(); recs != 0 || bytes != 0 {
		t.Fatalf("in flight after everything settled: %d records, %d bytes; want 0", recs, bytes)
	}
}
