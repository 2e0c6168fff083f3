package kafka

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// bound is a source's stop_at, shared by its readers: it hands out only
// the records the bound covers, and closes finished once every one of
// them is acked (or the read time is up), which makes the engine drain
// and stop.
//
// Records past the bound are dropped from what Read returns without
// entering a partition tracker, so no commit passes them: they are only
// ever the tail of a partition's fetch (the partition is then paused, or
// the whole reader stops reading), so no record after them is acked.
//
// With stop_at end the bound is the end offsets listed at start (the last
// stable offsets under read_committed); partitions empty then, or already
// committed at their end, are done at once. A partition is done when the
// consumer's position reaches its end: transaction markers count as read
// (see admit), and under read_committed a tail of aborted records, which
// the client skips without a trace, is found by a probe (boundprobe.go).
// With several processes in the group, a partition another process owns
// is done once its committed position (the group's, or the sink's offsets)
// reached its end, checked every lagRefreshEvery: every process stops when
// the whole topic is.
type bound struct {
	cfg      config.StopAt
	finished chan struct{}
	once     sync.Once

	mu      sync.Mutex
	ready   bool
	ends    map[topicPartition]int64 // stop_at end: end offset per partition with records at start
	open    map[topicPartition]bool  // partitions of ends not yet acked to their end
	from    map[topicPartition]int64 // where reading a partition of ends starts: log start, or the offset resumed from
	left    int64                    // max_records still to hand out; -1: no limit
	handed  int64
	settled int64 // records acked
	latest  bool  // start_from latest: a partition without a committed offset has nothing to read
}

func newBound(cfg config.StopAt, startFrom string) *bound {
	b := &bound{cfg: cfg, finished: make(chan struct{}), left: -1, latest: startFrom == "latest",
		ends: map[topicPartition]int64{}, open: map[topicPartition]bool{}, from: map[topicPartition]int64{}}
	if cfg.MaxRecords > 0 {
		b.left = cfg.MaxRecords
	}
	return b
}

func (b *bound) finish() {
	// The max_read_time timer is left to fire: finish is idempotent, and
	// it may run from that timer before setup has returned (a very short
	// max_read_time), so it must not touch what setup writes.
	b.once.Do(func() { close(b.finished) })
}

// setup lists the end offsets the first time a reader opens; it starts
// max_read_time's clock.
func (b *bound) setup(ctx context.Context, conn []kgo.Opt, topics []string, readCommitted bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ready {
		return nil
	}
	if b.cfg.End {
		cl, err := kgo.NewClient(conn...)
		if err != nil {
			return fmt.Errorf("listing end offsets for stop_at: %w", err)
		}
		defer cl.Close()
		adm := kadm.NewClient(cl)
		list := adm.ListEndOffsets
		if readCommitted {
			list = adm.ListCommittedOffsets
		}
		ends, err := list(ctx, topics...)
		if err == nil {
			err = ends.Error()
		}
		if err != nil {
			return fmt.Errorf("listing end offsets for stop_at: %w", err)
		}
		starts, err := adm.ListStartOffsets(ctx, topics...)
		if err == nil {
			err = starts.Error()
		}
		if err != nil {
			return fmt.Errorf("listing start offsets for stop_at: %w", err)
		}
		ends.Each(func(o kadm.ListedOffset) {
			tp := topicPartition{o.Topic, o.Partition}
			b.ends[tp] = o.Offset
			if s, ok := starts.Lookup(o.Topic, o.Partition); ok && s.Offset < o.Offset {
				b.open[tp] = true
				b.from[tp] = s.Offset
			}
		})
		if len(b.open) == 0 {
			b.finish()
		}
	}
	if d := b.cfg.MaxReadTime; d > 0 {
		time.AfterFunc(d, b.finish)
	}
	b.ready = true
	return nil
}

// assigned learns where assigned partitions start (committed or stored
// offsets; negative: none, start_from applies): one already at its end
// is done.
func (b *bound) assigned(offsets map[string]map[int32]kgo.Offset) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for topic, ps := range offsets {
		for p, o := range ps {
			tp := topicPartition{topic, p}
			if !b.open[tp] {
				continue
			}
			off := o.EpochOffset().Offset
			if (off < 0 && b.latest) || off >= b.ends[tp] {
				delete(b.open, tp)
			}
			b.from[tp] = max(b.from[tp], off)
		}
	}
	if b.cfg.End && len(b.open) == 0 {
		b.finish()
	}
}

// exhausted reports whether nothing more is to be read.
func (b *bound) exhausted() bool {
	select {
	case <-b.finished:
		return true
	default:
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.left == 0
}

// admit returns the records of one partition's fetch the bound covers (a
// prefix of recs, control records included) and whether the partition is
// done reading.
//
// With stop_at end the client keeps control records: the end offset
// listed at start counts the commit and abort markers, which are the last
// offsets of a partition written by transactional producers, and under
// read_committed the last stable offset is often one past a marker. A
// consumer is never handed a marker, so without them the record at end-1
// would never be seen and the partition never done.
func (b *bound) admit(tp topicPartition, recs []*kgo.Record) ([]*kgo.Record, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	full := false
	if b.cfg.End {
		end, ok := b.ends[tp]
		if !ok || !b.open[tp] {
			return nil, true // created after the start, or done
		}
		n := 0
		for n < len(recs) && recs[n].Offset < end {
			n++
		}
		recs, full = recs[:n], n < len(recs) || (n > 0 && recs[n-1].Offset == end-1)
	}
	// Control records (commit and abort markers, kept for stop_at end)
	// are positions, not records: max_records does not count them.
	var data int64
	n := 0
	for ; n < len(recs); n++ {
		if recs[n].Attrs.IsControl() {
			continue
		}
		if data == b.left {
			break
		}
		data++
	}
	recs = recs[:n]
	if b.left >= 0 {
		b.left -= data
	}
	b.handed += data
	return recs, full
}

// acked learns that n records were acked and that tp's committable
// position is now next.
func (b *bound) acked(tp topicPartition, next int64, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.settled += int64(n)
	if b.open[tp] && next >= b.ends[tp] {
		delete(b.open, tp)
		if len(b.open) == 0 {
			b.finish()
		}
	}
	if b.left == 0 && b.settled >= b.handed {
		b.finish()
	}
}

// checkCommitted marks done the open partitions whose committed position
// (the group's, or the sink's with an offset store) reached their end:
// those another process of the group finished.
func (b *bound) checkCommitted(ctx context.Context, adm *kadm.Client, group string, store connector.OffsetStore) {
	b.mu.Lock()
	byTopic := map[string][]int32{}
	for tp := range b.open {
		byTopic[tp.topic] = append(byTopic[tp.topic], tp.partition)
	}
	b.mu.Unlock()
	if len(byTopic) == 0 {
		return
	}
	at := map[topicPartition]int64{}
	if store != nil {
		for topic, ps := range byTopic {
			offs, err := store.LoadOffsets(ctx, topic, ps)
			if err != nil {
				return
			}
			for p, o := range offs {
				at[topicPartition{topic, p}] = o
			}
		}
	} else {
		resp, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			return
		}
		resp.Each(func(o kadm.OffsetResponse) {
			if o.Err == nil {
				at[topicPartition{o.Topic, o.Partition}] = o.At
			}
		})
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for tp, off := range at {
		if b.open[tp] && off >= b.ends[tp] {
			delete(b.open, tp)
		}
	}
	if b.cfg.End && len(b.open) == 0 {
		b.finish()
	}
}

// Finished implements connector.Finisher; nil (never) without stop_at.
func (s *Source) Finished() <-chan struct{} {
	if s.bound == nil {
		return nil
	}
	return s.bound.finished
}

// adjustAndBound is adjustOffsets, telling the bound where assigned
// partitions start.
func (r *reader) adjustAndBound(ctx context.Context, assigned map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	out, err := r.adjustOffsets(ctx, assigned)
	if err == nil && r.bound != nil {
		r.bound.assigned(out)
	}
	return out, err
}
