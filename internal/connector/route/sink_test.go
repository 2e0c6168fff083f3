package route

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-dev/sluice/internal/connector"
)

// byValue routes on the first byte of the value: o -> orders, r -> rest,
// x -> an expression error.
type byValue struct{}

func (byValue) Route(r *connector.Record) (string, error) {
	switch r.Value[0] {
	case 'o':
		return "orders", nil
	case 'x':
		return "", &connector.RecordError{Record: r, Reason: "transform", Err: errors.New("route[0].when: no such key: kind")}
	}
	return "rest", nil
}

// scriptedSink returns err on every write (nil: all durable) and keeps
// what it was given.
type scriptedSink struct {
	mu   sync.Mutex
	got  []*connector.Record
	err  func(batch []*connector.Record) error
	ctrl connector.Controller
}

func (s *scriptedSink) Write(_ context.Context, batch []*connector.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, batch...)
	if s.err != nil {
		return s.err(batch)
	}
	return nil
}
func (s *scriptedSink) Close(context.Context) error          { return nil }
func (s *scriptedSink) SetController(c connector.Controller) { s.ctrl = c }

func records(values ...string) []*connector.Record {
	out := make([]*connector.Record, len(values))
	for i, v := range values {
		out[i] = &connector.Record{Topic: "t", Offset: int64(i), Value: []byte(v)}
	}
	return out
}

func offsets(recs []*connector.Record) []int64 {
	var out []int64
	for _, r := range recs {
		out = append(out, r.Offset)
	}
	return out
}

func TestEachRecordGoesToItsSinkAndOnlyItsSinkMakesItDurable(t *testing.T) {
	batch := records("o1", "r1", "x1", "o2", "r2", "r3")
	batch[2].Partition = 1 // alone there: it holds nothing back
	orders := &scriptedSink{}
	// The rest sink rejects one record and loses its connection for
	// another: neither may be reported durable.
	rest := &scriptedSink{err: func(b []*connector.Record) error {
		return &connector.BatchError{
			Failed:     []*connector.RecordError{{Record: b[0], Reason: "type", Err: errors.New("bad column")}},
			NotWritten: []*connector.Record{b[2]},
			Cause:      errors.New("connection reset"),
		}
	}}
	s := New(byValue{}, map[string]connector.Sink{"orders": orders, "rest": rest})
	err := s.Write(context.Background(), batch)
	var be *connector.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("Write = %v, want a BatchError", err)
	}
	if got := offsets(orders.got); len(got) != 2 || got[0] != 0 || got[1] != 3 {
		t.Errorf("orders got offsets %v, want [0 3]", got)
	}
	if got := offsets(rest.got); len(got) != 3 || got[0] != 1 || got[1] != 4 || got[2] != 5 {
		t.Errorf("rest got offsets %v, want [1 4 5]", got)
	}
	if got := offsets(be.Durable(batch)); len(got) != 3 || got[0] != 0 || got[1] != 3 || got[2] != 4 {
		t.Errorf("durable offsets %v, want [0 3 4]", got)
	}
	var failed []string
	for _, f := range be.Failed {
		failed = append(failed, f.Reason)
	}
	if len(be.Failed) != 2 || be.Failed[0].Record.Offset != 2 || be.Failed[1].Record.Offset != 1 {
		t.Errorf("failed %v (%v), want the route error (offset 2) and the rejected record (offset 1)", be.Failed, failed)
	}
	if len(be.NotWritten) != 1 || be.NotWritten[0].Offset != 5 || !strings.Contains(be.Cause.Error(), "sink rest: connection reset") {
		t.Errorf("not written %v, cause %v", offsets(be.NotWritten), be.Cause)
	}
	if w := s.Written(); w["orders"] != 2 || w["rest"] != 1 {
		t.Errorf("written per sink %v, want orders 2, rest 1", w)
	}
}

func TestASinkThatFailsWholeLeavesItsRecordsNotWrittenAndThePermanenceVisible(t *testing.T) {
	batch := records("o1", "r1", "o2")
	down := connector.Permanent(errors.New("permission denied"))
	orders := &scriptedSink{err: func([]*connector.Record) error { return down }}
	rest := &scriptedSink{}
	s := New(byValue{}, map[string]connector.Sink{"orders": orders, "rest": rest})
	err := s.Write(context.Background(), batch)
	var be *connector.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("Write = %v", err)
	}
	if got := offsets(be.NotWritten); len(got) != 2 || got[0] != 0 || got[1] != 2 {
		t.Errorf("not written %v, want [0 2]", got)
	}
	if got := offsets(be.Durable(batch)); len(got) != 1 || got[0] != 1 {
		t.Errorf("durable %v, want [1]", got)
	}
	if !connector.IsPermanent(err) {
		t.Error("a permanent failure of one sink must stop the pipeline, not be retried forever")
	}
}

func TestAllDurableIsNil(t *testing.T) {
	orders, rest := &scriptedSink{}, &scriptedSink{}
	s := New(byValue{}, map[string]connector.Sink{"orders": orders, "rest": rest})
	if err := s.Write(context.Background(), records("o", "r", "r")); err != nil {
		t.Fatal(err)
	}
	var c connector.Controller = fakeController{}
	s.SetController(c)
	if orders.ctrl == nil || rest.ctrl == nil {
		t.Error("the controller did not reach the sinks")
	}
}

type fakeController struct{}

func (fakeController) PauseAndDrain(context.Context) (func(), error) { return func() {}, nil }
func (fakeController) Pause() func()                                 { return func() {} }
