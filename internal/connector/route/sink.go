// Package route is a Sink over several named sinks: each record goes to
// the one its Picker names (the pipeline's `route:` list). It keeps the
// engine's contract per record: a record is reported durable only when
// its own sink made it durable, so the source commits an offset only when
// every sink that got records at or below it has them.
package route

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/sluice-dev/sluice/internal/connector"
)

// Picker names the sink of a record. A *connector.RecordError is the
// record's problem (an expression that failed on it).
type Picker interface {
	Route(r *connector.Record) (sink string, err error)
}

// Sink writes each record to the sink its Picker names.
type Sink struct {
	picker  Picker
	names   []string // sorted
	sinks   map[string]connector.Sink
	written map[string]*atomic.Int64
}

// New returns a Sink over sinks, which it owns (Close closes them).
func New(picker Picker, sinks map[string]connector.Sink) *Sink {
	s := &Sink{picker: picker, sinks: sinks, written: map[string]*atomic.Int64{}}
	for name := range sinks {
		s.names = append(s.names, name)
		s.written[name] = &atomic.Int64{}
	}
	sort.Strings(s.names)
	return s
}

// Write splits batch by sink and writes the parts at once, each to its
// sink. The result says what became of each record: durable when its sink
// said so, not written (with the causes) when its sink failed, rejected
// when its sink or its route rejected it.
func (s *Sink) Write(ctx context.Context, batch []*connector.Record) error {
	parts := map[string][]*connector.Record{}
	var failed []*connector.RecordError
	for _, r := range batch {
		name, err := s.picker.Route(r)
		if err != nil {
			var re *connector.RecordError
			if !errors.As(err, &re) {
				re = &connector.RecordError{Record: r, Reason: "route", Err: err}
			}
			failed = append(failed, re)
			continue
		}
		if _, ok := s.sinks[name]; !ok {
			failed = append(failed, &connector.RecordError{Record: r, Reason: "route", Err: fmt.Errorf("no sink named %q", name)})
			continue
		}
		parts[name] = append(parts[name], r)
	}
	held := holdBehindFailures(parts, failed)
	errs := make(map[string]error, len(parts))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, recs := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.sinks[name].Write(ctx, recs)
			mu.Lock()
			errs[name] = err
			mu.Unlock()
		}()
	}
	wg.Wait()
	be := &connector.BatchError{Failed: failed, NotWritten: held}
	var causes []error
	for _, name := range s.names {
		recs, ok := parts[name]
		if !ok {
			continue
		}
		err := errs[name]
		var sbe *connector.BatchError
		switch {
		case err == nil:
			s.written[name].Add(int64(len(recs)))
			continue
		case errors.As(err, &sbe):
			s.written[name].Add(int64(len(sbe.Durable(recs))))
			be.Failed = append(be.Failed, sbe.Failed...)
			be.NotWritten = append(be.NotWritten, sbe.NotWritten...)
			be.Released = append(be.Released, sbe.Released...)
			if sbe.Cause != nil {
				causes = append(causes, fmt.Errorf("sink %s: %w", name, sbe.Cause))
			}
		default:
			// Nothing of this part may be assumed durable.
			be.NotWritten = append(be.NotWritten, recs...)
			causes = append(causes, fmt.Errorf("sink %s: %w", name, err))
		}
	}
	// A nil Cause with records not written means "write them again now"
	// (a sink that stopped short on purpose); any failure makes it a
	// retry after a backoff, or a stop when permanent.
	be.Cause = errors.Join(causes...)
	if len(be.Failed)+len(be.NotWritten)+len(be.Released) == 0 {
		return nil
	}
	return be
}

// holdBehindFailures takes out of parts, and returns, the records that
// follow a record whose route failed in its partition: an exactly-once
// sink would store an offset past it before on_error has it, and a crash
// then would skip it for good. They are written again once it is handled.
func holdBehindFailures(parts map[string][]*connector.Record, failed []*connector.RecordError) []*connector.Record {
	if len(failed) == 0 {
		return nil
	}
	type tp struct {
		topic     string
		partition int32
	}
	first := map[tp]int64{}
	for _, re := range failed {
		k := tp{re.Record.Topic, re.Record.Partition}
		if o, ok := first[k]; !ok || re.Record.Offset < o {
			first[k] = re.Record.Offset
		}
	}
	var held []*connector.Record
	for name, recs := range parts {
		keep := recs[:0:0]
		for _, r := range recs {
			if o, ok := first[tp{r.Topic, r.Partition}]; ok && r.Offset > o {
				held = append(held, r)
				continue
			}
			keep = append(keep, r)
		}
		if len(keep) == 0 {
			delete(parts, name)
		} else {
			parts[name] = keep
		}
	}
	// In source order, whatever order the map gave the sinks.
	slices.SortStableFunc(held, func(a, b *connector.Record) int {
		return cmp.Or(strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
	})
	return held
}

// Written returns, per sink, the records it made durable.
func (s *Sink) Written() map[string]int64 {
	out := make(map[string]int64, len(s.names))
	for _, name := range s.names {
		out[name] = s.written[name].Load()
	}
	return out
}

// SetController hands the engine's controller to the sinks that want one
// (the SQL sinks' pause-mode merges).
func (s *Sink) SetController(c connector.Controller) {
	for _, name := range s.names {
		if cs, ok := s.sinks[name].(connector.Controllable); ok {
			cs.SetController(c)
		}
	}
}

// Close closes every sink.
func (s *Sink) Close(ctx context.Context) error {
	var errs []error
	for _, name := range s.names {
		if err := s.sinks[name].Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("closing sink %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

var (
	_ connector.Sink          = (*Sink)(nil)
	_ connector.Controllable  = (*Sink)(nil)
	_ connector.RouteReporter = (*Sink)(nil)
)
