package kafka

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Under read_committed, stop_at end can be a last stable offset with only
// records of aborted transactions below it since the last record read: a
// transaction aborted after another producer had opened one in the same
// partition has its abort marker past the last stable offset. The client
// drops those records and hands out nothing, not even a marker, so the
// partition would never be seen reaching its end. The client's own fetch
// position moves past them but is not exposed; probeEnds finds the same
// position with a fetch of its own, as the client would make it, through
// a client of its own: the broker answers one connection's requests in
// order, so on the consumer's fetch connection the probe would wait
// behind the consumer's long poll (fetch.max.wait.ms).

// probeRange returns where to look for records the consumer has yet to be
// handed in an open partition of the bound (read is the offset after the
// last record read, -1 none) and its end; ok is false when tp is not open.
func (b *bound) probeRange(tp topicPartition, read int64) (from, end int64, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open[tp] {
		return 0, 0, false
	}
	from, end = max(b.from[tp], read), b.ends[tp]
	return from, end, from < end
}

// done marks tp done: nothing below its end is left to hand out.
func (b *bound) done(tp topicPartition) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.open[tp] {
		delete(b.open, tp)
		if len(b.open) == 0 {
			b.finish()
		}
	}
}

// probeEnds marks done the open partitions of the bound that this reader
// owns, with nothing in flight, and nothing a read_committed consumer
// would be handed between what was read and their end, fetching through
// cl. A failure leaves the partition open: the next refresh tries again.
func (r *reader) probeEnds(ctx context.Context, cl *kgo.Client) {
	type probe struct {
		tp        topicPartition
		from, end int64
	}
	var probes []probe
	topics := map[string]bool{}
	r.mu.Lock()
	for tp, t := range r.parts {
		if t.retired || t.pending() > 0 {
			continue
		}
		if from, end, ok := r.bound.probeRange(tp, t.readNext); ok {
			probes = append(probes, probe{tp, from, end})
			topics[tp.topic] = true
		}
	}
	r.mu.Unlock()
	if len(probes) == 0 {
		return
	}
	names := make([]string, 0, len(topics))
	for topic := range topics {
		names = append(names, topic)
	}
	// Through cl, which learns the brokers from the answer.
	details, err := kadm.NewClient(cl).ListTopics(ctx, names...)
	if err != nil {
		r.log.Debug("probing stop_at ends", "err", err)
		return
	}
	for _, p := range probes {
		d := details[p.tp.topic]
		leader := int32(-1)
		if pd, ok := d.Partitions[p.tp.partition]; ok {
			leader = pd.Leader
		}
		empty, err := nothingHandedBelow(ctx, cl.Broker(int(leader)), p.tp, d.ID, p.from, p.end)
		if err != nil {
			r.log.Debug("probing stop_at ends", "topic", p.tp.topic, "partition", p.tp.partition, "err", err)
			continue
		}
		if empty {
			r.bound.done(p.tp)
		}
	}
}

// nothingHandedBelow reports whether a read_committed consumer at from
// would be handed no record (control records included) below end,
// fetching from leader.
func nothingHandedBelow(ctx context.Context, leader *kgo.Broker, tp topicPartition, id kadm.TopicID, from, end int64) (bool, error) {
	for from < end {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID = -1
		req.MaxWaitMillis = 0 // answer with what is there: it is all below the end
		req.MaxBytes = 1 << 20
		req.IsolationLevel = 1
		req.SessionEpoch = -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = tp.topic, id
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = tp.partition, from, 1<<20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, leader)
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		if err != nil {
			return false, err
		}
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			return false, fmt.Errorf("fetch answered %d topics for one partition", len(resp.Topics))
		}
		fp, next := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
			KeepControlRecords: true,
			Offset:             from,
			IsolationLevel:     kgo.ReadCommitted(),
			Topic:              tp.topic,
			Partition:          tp.partition,
		}, &resp.Topics[0].Partitions[0], kgo.DefaultDecompressor(), nil)
		if fp.Err != nil {
			return false, fp.Err
		}
		for _, rec := range fp.Records {
			if rec.Offset < end {
				return false, nil // the consumer is handed it
			}
		}
		if next <= from {
			return false, nil // nothing fetched (yet)
		}
		from = next
	}
	return true, nil
}
