package kafka

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// StoredOffset is a position a consumer is about to resume from: the next
// offset to read of one partition, and where it was kept.
type StoredOffset struct {
	Topic     string
	Partition int32
	Offset    int64
	// From names the store: "the sink's sluice_offsets table" or "the
	// committed offset of group G".
	From string
}

// OutOfRange is a stored offset that the partition's log cannot serve.
type OutOfRange struct {
	StoredOffset
	LogStart int64 // the earliest offset still in the log
	LogEnd   int64 // the high watermark: the offset the next record gets
}

// OffsetsOutOfRangeError says that a pipeline would resume from offsets
// the log does not hold. Above the log end, the topic was recreated or the
// broker lost its data (an in-memory broker restarted): Kafka would reset
// the position, and an exactly-once sink would then drop every new record
// as "already written". Below the log start, retention deleted records
// before they were read. Either way resuming would lose records without a
// trace, so the pipeline stops and a person decides, with
// `sluice offsets reset`.
type OffsetsOutOfRangeError struct {
	Pipeline   string
	Partitions []OutOfRange
}

func (e *OffsetsOutOfRangeError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "pipeline %s: stored offsets do not fit the log of %d partition(s):", e.Pipeline, len(e.Partitions))
	topics := map[string][]string{}
	for _, p := range e.Partitions {
		fmt.Fprintf(&b, " %s/%d: %s holds %d, ", p.Topic, p.Partition, p.From, p.Offset)
		if p.Offset > p.LogEnd {
			fmt.Fprintf(&b, "above the log end %d (log start %d): the topic was recreated or the broker lost its data, so new records would be skipped as already written;",
				p.LogEnd, p.LogStart)
		} else {
			fmt.Fprintf(&b, "below the log start %d (log end %d): retention deleted offsets %d to %d before they were read;",
				p.LogStart, p.LogEnd, p.Offset, p.LogStart-1)
		}
		topics[p.Topic] = append(topics[p.Topic], fmt.Sprint(p.Partition))
	}
	names := make([]string, 0, len(topics))
	for t := range topics {
		names = append(names, t)
	}
	sort.Strings(names)
	b.WriteString(" to choose where to resume, stop every process of the pipeline, then run")
	for _, t := range names {
		fmt.Fprintf(&b, " `sluice offsets reset PIPELINE.yaml --topic %s --partitions %s --to-earliest` (or --to-latest, --to-offset N, --to-time T)",
			t, strings.Join(topics[t], ","))
	}
	b.WriteString(", check the table it prints and add --execute")
	return b.String()
}

// aboveEndRechecks are the waits before an offset found above the log end
// is checked again: a partition's new leader can briefly report a high
// watermark below the old leader's after a failover, so only an offset
// that stays above the end is taken for a recreated topic.
var aboveEndRechecks = []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}

// checkOffsetsInLog returns an *OffsetsOutOfRangeError naming every stored
// offset above its partition's log end (still so after aboveEndRechecks)
// or below its log start. Failing to list the log's offsets is returned as
// is (transient: the broker).
func checkOffsetsInLog(ctx context.Context, adm *kadm.Client, pipeline string, stored []StoredOffset) error {
	err := checkOffsetsInLogOnce(ctx, adm, pipeline, stored)
	for _, wait := range aboveEndRechecks {
		var oor *OffsetsOutOfRangeError
		if !errors.As(err, &oor) || !oor.anyAboveEnd() {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
		err = checkOffsetsInLogOnce(ctx, adm, pipeline, stored)
	}
	return err
}

func (e *OffsetsOutOfRangeError) anyAboveEnd() bool {
	for _, p := range e.Partitions {
		if p.Offset > p.LogEnd {
			return true
		}
	}
	return false
}

func checkOffsetsInLogOnce(ctx context.Context, adm *kadm.Client, pipeline string, stored []StoredOffset) error {
	if len(stored) == 0 {
		return nil
	}
	var topics []string
	seen := map[string]bool{}
	for _, s := range stored {
		if !seen[s.Topic] {
			seen[s.Topic] = true
			topics = append(topics, s.Topic)
		}
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return fmt.Errorf("listing the log start offsets of %v: %w", topics, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return fmt.Errorf("listing the log end offsets of %v: %w", topics, err)
	}
	var bad []OutOfRange
	for _, s := range stored {
		start, ok := starts.Lookup(s.Topic, s.Partition)
		if !ok || start.Err != nil {
			return fmt.Errorf("listing the log start offset of %s/%d: %w", s.Topic, s.Partition, listErr(ok, start.Err))
		}
		end, ok := ends.Lookup(s.Topic, s.Partition)
		if !ok || end.Err != nil {
			return fmt.Errorf("listing the log end offset of %s/%d: %w", s.Topic, s.Partition, listErr(ok, end.Err))
		}
		if s.Offset > end.Offset || s.Offset < start.Offset {
			bad = append(bad, OutOfRange{StoredOffset: s, LogStart: start.Offset, LogEnd: end.Offset})
		}
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Slice(bad, func(i, j int) bool {
		if bad[i].Topic != bad[j].Topic {
			return bad[i].Topic < bad[j].Topic
		}
		return bad[i].Partition < bad[j].Partition
	})
	return &OffsetsOutOfRangeError{Pipeline: pipeline, Partitions: bad}
}

func listErr(found bool, err error) error {
	if !found {
		return fmt.Errorf("the broker did not answer for it")
	}
	return err
}
