// Package tail reads a topic like a console consumer: from a chosen
// position, one partition or all, decoding values (Avro in Confluent's
// wire format through a schema registry, JSON, text) for people to read.
// It joins no group and commits nothing.
package tail

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/codec"
	"github.com/sluice-dev/sluice/internal/connector"
)

// Options say what to read.
type Options struct {
	Brokers []string
	Topic   string
	// From is earliest, latest (default), an offset (every partition
	// from it, or from its start when it is past it), or an RFC 3339
	// time (the first record at or after it).
	From string
	// Partition reads one partition; -1 reads all.
	Partition int32
	// Max stops after this many records (0: no limit).
	Max int64
	// UntilEnd stops at the end offsets as they were when reading began.
	UntilEnd bool
	// RegistryURL decodes Avro in Confluent's wire format; without it
	// such values are shown as base64.
	RegistryURL   string
	ClientOptions []kgo.Opt
}

// Message is one record as shown: the value decoded to JSON when it is
// Avro (through the registry) or JSON, else text, else base64.
type Message struct {
	Partition int32             `json:"partition"`
	Offset    int64             `json:"offset"`
	Timestamp time.Time         `json:"timestamp"`
	Key       *string           `json:"key"`
	Headers   map[string]string `json:"headers,omitempty"`
	// Value is the decoded value as JSON; ValueText the value when it is
	// not JSON (text, or "base64:..." for binary); Null for a tombstone.
	Value     json.RawMessage `json:"value,omitempty"`
	ValueText string          `json:"value_text,omitempty"`
	Null      bool            `json:"null,omitempty"`
	// DecodeError says why an Avro value could not be decoded.
	DecodeError string `json:"decode_error,omitempty"`
}

// Read reads until ctx ends, Max records were read, or (UntilEnd) the
// end offsets are reached, calling show for each record in the order of
// each partition. Its error is for bad options, a missing topic, a
// broker that cannot be asked, and show's own errors.
func Read(ctx context.Context, o Options, show func(Message) error) error {
	if o.Topic == "" {
		return errors.New("a topic is required")
	}
	// Transaction markers take offsets too: kept, they tell --until-end
	// that the end was reached when a topic ends with a commit marker.
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(o.Brokers...), kgo.KeepControlRecords()}, o.ClientOptions...)...)
	if err != nil {
		return fmt.Errorf("creating client: %w", err)
	}
	defer cl.Close()
	starts, ends, err := positions(ctx, kadm.NewClient(cl), o)
	if err != nil {
		return err
	}
	remaining := map[int32]bool{}
	assign := map[int32]kgo.Offset{}
	for p, start := range starts {
		assign[p] = kgo.NewOffset().At(start)
		if start < ends[p] {
			remaining[p] = true
		}
	}
	if o.UntilEnd && len(remaining) == 0 {
		return nil
	}
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{o.Topic: assign})

	var avroDec *codec.AvroConfluent
	if o.RegistryURL != "" {
		reg, err := codec.NewRegistry(codec.RegistryOptions{URL: o.RegistryURL})
		if err != nil {
			return fmt.Errorf("--registry-url: %w", err)
		}
		if avroDec, err = codec.NewAvroConfluent(reg, ""); err != nil {
			return err
		}
	}
	var shown int64
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err := fs.Err0(); err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("reading %s: %w", o.Topic, err)
		}
		var showErr error
		stop := false
		fs.EachRecord(func(r *kgo.Record) {
			if stop || showErr != nil {
				return
			}
			if o.UntilEnd && r.Offset >= ends[r.Partition] {
				return // written after reading began
			}
			if !r.Attrs.IsControl() {
				if showErr = show(message(ctx, avroDec, r)); showErr != nil {
					return
				}
				shown++
			}
			if r.Offset >= ends[r.Partition]-1 {
				delete(remaining, r.Partition)
			}
			stop = o.Max > 0 && shown >= o.Max || o.UntilEnd && len(remaining) == 0
		})
		if showErr != nil {
			return showErr
		}
		if stop {
			return nil
		}
	}
}

// positions resolves where each partition starts, and its end offset
// now.
func positions(ctx context.Context, adm *kadm.Client, o Options) (starts, ends map[int32]int64, err error) {
	endOffsets, err := adm.ListEndOffsets(ctx, o.Topic)
	if err != nil {
		return nil, nil, fmt.Errorf("looking up %s: %w", o.Topic, err)
	}
	if err := endOffsets.Error(); err != nil {
		return nil, nil, fmt.Errorf("looking up %s: %w", o.Topic, err)
	}
	startOffsets, err := adm.ListStartOffsets(ctx, o.Topic)
	if err != nil {
		return nil, nil, fmt.Errorf("looking up %s: %w", o.Topic, err)
	}
	ends, starts = map[int32]int64{}, map[int32]int64{}
	endOffsets.Each(func(l kadm.ListedOffset) { ends[l.Partition] = l.Offset })
	if len(ends) == 0 {
		return nil, nil, fmt.Errorf("topic %s does not exist", o.Topic)
	}
	if o.Partition >= 0 {
		if _, ok := ends[o.Partition]; !ok {
			return nil, nil, fmt.Errorf("--partition %d: %s has partitions 0 to %d", o.Partition, o.Topic, len(ends)-1)
		}
		ends = map[int32]int64{o.Partition: ends[o.Partition]}
	}
	first := map[int32]int64{}
	startOffsets.Each(func(l kadm.ListedOffset) { first[l.Partition] = l.Offset })
	from := strings.TrimSpace(o.From)
	switch {
	case from == "" || from == "latest":
		for p, e := range ends {
			starts[p] = e
		}
	case from == "earliest":
		for p := range ends {
			starts[p] = first[p]
		}
	default:
		if n, err := strconv.ParseInt(from, 10, 64); err == nil && n >= 0 {
			for p, e := range ends {
				starts[p] = min(max(n, first[p]), e)
			}
			break
		}
		at, err := time.Parse(time.RFC3339, from)
		if err != nil {
			return nil, nil, fmt.Errorf("--from %q: use earliest, latest, an offset or an RFC 3339 time", o.From)
		}
		after, err := adm.ListOffsetsAfterMilli(ctx, at.UnixMilli(), o.Topic)
		if err != nil {
			return nil, nil, fmt.Errorf("looking up offsets of %s at %s: %w", o.Topic, from, err)
		}
		for p, e := range ends {
			starts[p] = e
			if l, ok := after.Lookup(o.Topic, p); ok && l.Err == nil && l.Offset >= 0 {
				starts[p] = min(l.Offset, e)
			}
		}
	}
	return starts, ends, nil
}

func message(ctx context.Context, avroDec *codec.AvroConfluent, r *kgo.Record) Message {
	m := Message{Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp}
	if r.Key != nil {
		k := text(r.Key)
		m.Key = &k
	}
	if len(r.Headers) > 0 {
		m.Headers = map[string]string{}
		for _, h := range r.Headers {
			m.Headers[h.Key] = text(h.Value)
		}
	}
	switch {
	case r.Value == nil:
		m.Null = true
	case avroDec != nil && len(r.Value) >= 5 && r.Value[0] == 0:
		rec := &connector.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Value: r.Value}
		err := avroDec.Decode(ctx, rec)
		var out []byte
		if err == nil {
			out, err = codec.JSONEncoder{}.Encode(ctx, r.Topic, rec)
		}
		if err != nil {
			m.DecodeError, m.ValueText = err.Error(), text(r.Value)
			return m
		}
		m.Value = out
	case json.Valid(r.Value):
		m.Value = r.Value
	default:
		m.ValueText = text(r.Value)
	}
	return m
}

// text is b as text when it is UTF-8 without control characters, else
// "base64:" and its base64.
func text(b []byte) string {
	if utf8.Valid(b) && !strings.ContainsFunc(string(b), func(r rune) bool { return r < 0x20 && r != '\t' }) {
		return string(b)
	}
	return "base64:" + base64.StdEncoding.EncodeToString(b)
}
