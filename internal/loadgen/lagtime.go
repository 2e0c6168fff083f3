package loadgen

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// lagAges reads each group's lag age at most once per lagAgeEvery (it
// opens a client and fetches), and between reads ages the last one with
// the clock: samples every 200 ms stay cheap.
type lagAges struct {
	last map[string]lagAgeRead
}

type lagAgeRead struct {
	at  time.Time
	age time.Duration
	ok  bool
}

const lagAgeEvery = time.Second

func (a *lagAges) get(ctx context.Context, opts []kgo.Opt, l kadm.DescribedGroupLag, now time.Time) (float64, bool) {
	if a.last == nil {
		a.last = map[string]lagAgeRead{}
	}
	r, seen := a.last[l.Group]
	if !seen || now.Sub(r.at) >= lagAgeEvery {
		readCtx, cancel := context.WithTimeout(ctx, time.Second)
		age, ok := lagAge(readCtx, opts, l.Lag, now)
		cancel()
		r = lagAgeRead{at: now, age: age, ok: ok}
		a.last[l.Group] = r
	}
	return (r.age + now.Sub(r.at)).Seconds(), r.ok
}

// maxAgedPartitions bounds the partitions whose oldest waiting record a
// sample reads, per group: the most lagging ones.
const maxAgedPartitions = 64

// lagAge is a group's lag in time: how long the oldest record it has not
// consumed has waited, now minus the timestamp of the record at the
// committed offset, over its lagging partitions (the most lagging
// maxAgedPartitions). ok is false when nothing lags or no record could be
// read within ctx.
func lagAge(ctx context.Context, opts []kgo.Opt, lag kadm.GroupLag, now time.Time) (age time.Duration, ok bool) {
	positions := map[string]map[int32]kgo.Offset{}
	n := 0
	for _, m := range lag.Sorted() {
		if m.Err != nil || m.Lag <= 0 || n >= maxAgedPartitions {
			continue
		}
		at := m.Commit.At
		if at < 0 {
			at = m.Start.Offset
		}
		if positions[m.Topic] == nil {
			positions[m.Topic] = map[int32]kgo.Offset{}
		}
		positions[m.Topic][m.Partition] = kgo.NewOffset().At(at)
		n++
	}
	if n == 0 {
		return 0, false
	}
	cl, err := kgo.NewClient(append(opts, kgo.ConsumePartitions(positions), kgo.FetchMaxPartitionBytes(1<<10))...)
	if err != nil {
		return 0, false
	}
	defer cl.Close()
	seen := 0
	for seen < n && ctx.Err() == nil {
		fetches := cl.PollRecords(ctx, n)
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) == 0 || positions[p.Topic] == nil {
				return
			}
			if _, first := positions[p.Topic][p.Partition]; !first {
				return
			}
			delete(positions[p.Topic], p.Partition)
			seen++
			age, ok = max(age, now.Sub(p.Records[0].Timestamp)), true
			cl.PauseFetchPartitions(map[string][]int32{p.Topic: {p.Partition}})
		})
	}
	return age, ok
}
