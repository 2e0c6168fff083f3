// Package offsets shows and resets where a pipeline resumes reading Kafka:
// its consumer group's committed offsets and, for exactly-once SQL sinks,
// the offsets the sink stores with its rows (sluice_offsets). It is what
// `sluice offsets show|reset` runs, in the manner of
// kafka-consumer-groups --describe / --reset-offsets.
package offsets

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Store is where an exactly-once sink keeps the offsets to resume from
// (sql.OffsetTable). Its offsets take precedence over the group's.
type Store interface {
	Name() string
	Load(ctx context.Context, topic string) (map[int32]int64, error)
	Save(ctx context.Context, topic string, next map[int32]int64) error
}

// Pipeline is what the tool needs to know of one pipeline.
type Pipeline struct {
	Name       string
	Group      string
	Topics     []string
	TopicRegex string
	Admin      *kadm.Client
	Store      Store // nil: offsets live in the group only
}

// Filter narrows the partitions shown or reset; zero values select all.
type Filter struct {
	Topic      string
	Partitions []int32
}

// None marks an offset that is not stored.
const None int64 = -1

// Position is one partition: where the pipeline would resume, and the
// log around it.
type Position struct {
	Topic     string
	Partition int32
	Group     int64 // the group's committed offset, or None
	Sink      int64 // the sink's stored offset, or None (or no store)
	LogStart  int64
	LogEnd    int64
	New       int64 // the reset's target; None in show
}

// Current is where the pipeline resumes: the sink's offset when it has
// one, else the group's, else None (start_from decides).
func (p Position) Current() int64 {
	if p.Sink != None {
		return p.Sink
	}
	return p.Group
}

// Problem says why Current does not fit the log, or "".
func (p Position) Problem() string {
	c := p.Current()
	switch {
	case c == None:
		return ""
	case c > p.LogEnd:
		return "ahead of the log end"
	case c < p.LogStart:
		return "before the log start"
	}
	return ""
}

// Positions lists the partitions of the pipeline's topics that f selects.
func Positions(ctx context.Context, pl Pipeline, f Filter) ([]Position, error) {
	topics, err := pl.topics(ctx)
	if err != nil {
		return nil, err
	}
	if f.Topic != "" {
		if !slices.Contains(topics, f.Topic) {
			return nil, fmt.Errorf("--topic %s: pipeline %s reads %v", f.Topic, pl.Name, topics)
		}
		topics = []string{f.Topic}
	}
	if len(topics) == 0 {
		return nil, fmt.Errorf("pipeline %s: no topic matches %q", pl.Name, pl.TopicRegex)
	}
	starts, err := pl.Admin.ListStartOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("listing the log start offsets of %v: %w", topics, err)
	}
	ends, err := pl.Admin.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("listing the log end offsets of %v: %w", topics, err)
	}
	committed, err := pl.Admin.FetchOffsets(ctx, pl.Group)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return nil, fmt.Errorf("fetching the committed offsets of group %s: %w", pl.Group, err)
	}
	var out []Position
	for _, topic := range topics {
		var stored map[int32]int64
		if pl.Store != nil {
			if stored, err = pl.Store.Load(ctx, topic); err != nil {
				return nil, err
			}
		}
		found := false
		for p, end := range ends[topic] {
			if end.Err != nil {
				return nil, fmt.Errorf("listing the log end offset of %s/%d: %w", topic, p, end.Err)
			}
			if len(f.Partitions) > 0 && !slices.Contains(f.Partitions, p) {
				continue
			}
			found = true
			start, ok := starts.Lookup(topic, p)
			if !ok {
				return nil, fmt.Errorf("listing the log start offset of %s/%d: the broker did not answer for it", topic, p)
			}
			if start.Err != nil {
				return nil, fmt.Errorf("listing the log start offset of %s/%d: %w", topic, p, start.Err)
			}
			pos := Position{Topic: topic, Partition: p, Group: None, Sink: None, New: None, LogStart: start.Offset, LogEnd: end.Offset}
			if c, ok := committed.Lookup(topic, p); ok && c.Err == nil && c.At >= 0 {
				pos.Group = c.At
			}
			if s, ok := stored[p]; ok {
				pos.Sink = s
			}
			out = append(out, pos)
		}
		if !found {
			return nil, fmt.Errorf("topic %s has no partition %v (or does not exist)", topic, f.Partitions)
		}
	}
	if len(f.Partitions) > 0 {
		for _, p := range f.Partitions {
			if !slices.ContainsFunc(out, func(pos Position) bool { return pos.Partition == p }) {
				return nil, fmt.Errorf("partition %d: no such partition in %v", p, topics)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out, nil
}

func (pl Pipeline) topics(ctx context.Context) ([]string, error) {
	if pl.TopicRegex == "" {
		return pl.Topics, nil
	}
	re, err := regexp.Compile(pl.TopicRegex)
	if err != nil {
		return nil, fmt.Errorf("source.kafka.topic_regex: %w", err)
	}
	td, err := pl.Admin.ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing topics: %w", err)
	}
	var out []string
	for _, t := range td.Sorted() {
		if !t.IsInternal && re.MatchString(t.Topic) {
			out = append(out, t.Topic)
		}
	}
	return out, nil
}

// Target is where a reset moves the selected partitions: exactly one of
// its fields is set.
type Target struct {
	Earliest bool
	Latest   bool
	Offset   *int64
	Time     *time.Time // the first record at or after it (the log end if none)
}

func (t Target) String() string {
	switch {
	case t.Earliest:
		return "--to-earliest"
	case t.Latest:
		return "--to-latest"
	case t.Offset != nil:
		return fmt.Sprintf("--to-offset %d", *t.Offset)
	case t.Time != nil:
		return "--to-time " + t.Time.Format(time.RFC3339)
	}
	return "(none)"
}

// Plan sets New on each position. An explicit --to-offset outside a
// partition's log is refused: the pipeline would stop on it again.
func Plan(ctx context.Context, pl Pipeline, ps []Position, t Target) error {
	var byTime kadm.ListedOffsets
	if t.Time != nil {
		topics := map[string]bool{}
		var names []string
		for _, p := range ps {
			if !topics[p.Topic] {
				topics[p.Topic] = true
				names = append(names, p.Topic)
			}
		}
		var err error
		if byTime, err = pl.Admin.ListOffsetsAfterMilli(ctx, t.Time.UnixMilli(), names...); err != nil {
			return fmt.Errorf("listing offsets after %s: %w", t.Time.Format(time.RFC3339), err)
		}
	}
	for i := range ps {
		p := &ps[i]
		switch {
		case t.Earliest:
			p.New = p.LogStart
		case t.Latest:
			p.New = p.LogEnd
		case t.Offset != nil:
			if *t.Offset < p.LogStart || *t.Offset > p.LogEnd {
				return fmt.Errorf("--to-offset %d: %s/%d holds offsets %d to %d", *t.Offset, p.Topic, p.Partition, p.LogStart, p.LogEnd)
			}
			p.New = *t.Offset
		case t.Time != nil:
			o, ok := byTime.Lookup(p.Topic, p.Partition)
			if !ok {
				return fmt.Errorf("listing the offset of %s/%d after %s: the broker did not answer for it", p.Topic, p.Partition, t.Time.Format(time.RFC3339))
			}
			if o.Err != nil {
				return fmt.Errorf("listing the offset of %s/%d after %s: %w", p.Topic, p.Partition, t.Time.Format(time.RFC3339), o.Err)
			}
			p.New = o.Offset
			if p.New < 0 || p.New > p.LogEnd {
				p.New = p.LogEnd
			}
		default:
			return errors.New("choose one of --to-earliest, --to-latest, --to-offset N, --to-time T")
		}
	}
	return nil
}

// ActiveMembers is an error naming the members when the group has any:
// the running pipeline would overwrite a reset with its next commit, and
// Kafka refuses commits from outside a live group.
func ActiveMembers(ctx context.Context, pl Pipeline) error {
	gs, err := pl.Admin.DescribeGroups(ctx, pl.Group)
	if err != nil {
		return fmt.Errorf("describing group %s: %w", pl.Group, err)
	}
	g, ok := gs[pl.Group]
	if !ok || errors.Is(g.Err, kerr.GroupIDNotFound) {
		return nil
	}
	if g.Err != nil {
		return fmt.Errorf("describing group %s: %w", pl.Group, g.Err)
	}
	if len(g.Members) == 0 {
		return nil
	}
	var who []string
	for _, m := range g.Members {
		who = append(who, fmt.Sprintf("%s on %s", m.ClientID, m.ClientHost))
	}
	return fmt.Errorf("group %s has %d active member(s) (%s): stop every process running pipeline %s, then reset",
		pl.Group, len(g.Members), strings.Join(who, ", "), pl.Name)
}

// Apply writes the plan: the group's offsets, and the sink's when it has
// a store (both, so that the position is the same whichever the source
// consults). It refuses when the group has active members.
func Apply(ctx context.Context, pl Pipeline, ps []Position) error {
	if err := ActiveMembers(ctx, pl); err != nil {
		return err
	}
	commit := kadm.Offsets{}
	byTopic := map[string]map[int32]int64{}
	for _, p := range ps {
		commit.AddOffset(p.Topic, p.Partition, p.New, -1)
		if byTopic[p.Topic] == nil {
			byTopic[p.Topic] = map[int32]int64{}
		}
		byTopic[p.Topic][p.Partition] = p.New
	}
	// The group first: Kafka refuses the commit if a member joined since
	// the check, and then nothing has changed.
	if err := pl.Admin.CommitAllOffsets(ctx, pl.Group, commit); err != nil {
		return fmt.Errorf("committing offsets for group %s: %w", pl.Group, err)
	}
	if pl.Store != nil {
		for topic, next := range byTopic {
			if err := pl.Store.Save(ctx, topic, next); err != nil {
				return fmt.Errorf("the group's offsets are reset but the sink's are not (run the reset again): %w", err)
			}
		}
	}
	return nil
}
