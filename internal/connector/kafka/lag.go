package kafka

import (
	"context"
	"strconv"
	"time"

	"github.com/sluice-dev/sluice/internal/metrics"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// lagRefreshEvery is how often each consumer asks the brokers for the end
// offsets of the partitions it owns (ListOffsets), as `sluice monitor`
// does. The high watermark of the last fetch is not enough: when fetching
// pauses (the in-flight cap is reached, a merge pauses consumers) it stops
// moving, and lag measured against it only ever showed what was in flight,
// never what waits in the log.
const lagRefreshEvery = 2 * time.Second

// startLagLoop refreshes the end offsets until the reader stops; Close
// waits for it through lagDone. With read_committed the end is the last
// stable offset: what this consumer could read.
func (r *reader) startLagLoop(readCommitted bool, every time.Duration) {
	r.lagDone = make(chan struct{})
	go func() {
		defer close(r.lagDone)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			select {
			case <-r.stopped:
				cancel()
			case <-ctx.Done():
			}
		}()
		adm := kadm.NewClient(r.cl)
		var probe *kgo.Client // see probeEnds; made when first needed
		defer func() {
			if probe != nil {
				probe.Close()
			}
		}()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-r.stopped:
				return
			case <-t.C:
			}
			reqCtx, done := context.WithTimeout(ctx, 5*every)
			r.refreshEnds(reqCtx, adm, readCommitted)
			if r.bound != nil {
				r.bound.checkCommitted(reqCtx, adm, r.group, r.offsets)
				if readCommitted && r.bound.cfg.End {
					if probe == nil {
						var err error
						if probe, err = kgo.NewClient(r.connOpts...); err != nil {
							r.log.Debug("probing stop_at ends", "err", err)
						}
					}
					if probe != nil {
						r.probeEnds(reqCtx, probe)
					}
				}
			}
			done()
		}
	}()
}

// refreshEnds lists the end offsets of every topic with an owned
// partition and stores them in the partitions' trackers. A failure is
// logged at Debug: lag is a gauge, the next refresh tries again, and
// fetching reports a broker that is really gone.
func (r *reader) refreshEnds(ctx context.Context, adm *kadm.Client, readCommitted bool) {
	r.mu.Lock()
	seen := map[string]bool{}
	var topics []string
	for tp := range r.parts {
		if !seen[tp.topic] {
			seen[tp.topic] = true
			topics = append(topics, tp.topic)
		}
	}
	r.mu.Unlock()
	if len(topics) == 0 {
		return
	}
	list := adm.ListEndOffsets
	if readCommitted {
		list = adm.ListCommittedOffsets
	}
	listed, err := list(ctx, topics...)
	if err != nil && len(listed) == 0 {
		if ctx.Err() == nil {
			r.log.Debug("listing end offsets for lag", "err", err)
		}
		return
	}
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	listed.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			return
		}
		if t := r.parts[topicPartition{o.Topic, o.Partition}]; t != nil {
			t.setEnd(o.Offset, now)
		}
	})
}

// Lag is records between each partition's end offset (refreshed every
// lagRefreshEvery, or the last fetch's high watermark when that is newer)
// and the committable position: records in flight included, as a
// consumer group's lag is measured.
func (r *reader) Lag() map[string]map[int32]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]map[int32]int64{}
	for tp, t := range r.parts {
		if out[tp.topic] == nil {
			out[tp.topic] = map[int32]int64{}
		}
		l := t.lag()
		out[tp.topic][tp.partition] = l
		metrics.ConsumerLag.WithLabelValues(r.pipeline, tp.topic, strconv.Itoa(int(tp.partition))).Set(float64(l))
	}
	return out
}

// LagAge is how long the oldest record this consumer has not finished
// has waited, over its partitions (see partitionTracker.lagAge).
func (r *reader) LagAge() time.Duration {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	var age time.Duration
	for _, t := range r.parts {
		age = max(age, t.lagAge(now))
	}
	return age
}
