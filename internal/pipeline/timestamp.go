package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/codec"
	"github.com/sluice-dev/sluice/internal/connector"
)

// TimestampPolicy says which time a record carries to the sink and to the
// watermark (the pipeline's `timestamp:` block).
type TimestampPolicy struct {
	// Policy: "" or "source" keeps the source's timestamp; create_time
	// and log_append_time keep it but require Kafka's timestamp type to
	// be that one; processing_time is when the record was read; field
	// takes Field of the decoded value.
	Policy string
	Field  string // dotted path into the decoded value
	// Format of Field: rfc3339 (default), unix, unix_ms or a Go layout.
	Format string
}

// stampingDecoder decodes, then applies the timestamp policy: every
// record the engine batches has passed through it, so the sink and the
// watermark see the policy's time. A record the policy cannot stamp is a
// *connector.RecordError (reason "timestamp"), routed by on_error.
type stampingDecoder struct {
	codec.Decoder
	policy TimestampPolicy
	path   []string
	now    func() time.Time
}

func newStampingDecoder(d codec.Decoder, p TimestampPolicy, now func() time.Time) codec.Decoder {
	if p.Policy == "" || p.Policy == "source" {
		return d
	}
	s := &stampingDecoder{Decoder: d, policy: p, now: now}
	if p.Field != "" {
		s.path = strings.Split(p.Field, ".")
	}
	return s
}

func (s *stampingDecoder) Decode(ctx context.Context, r *connector.Record) error {
	if err := s.Decoder.Decode(ctx, r); err != nil {
		return err
	}
	bad := func(err error) error {
		return &connector.RecordError{Record: r, Reason: "timestamp", Err: err}
	}
	switch s.policy.Policy {
	case "create_time", "log_append_time":
		want := connector.TimestampCreateTime
		if s.policy.Policy == "log_append_time" {
			want = connector.TimestampLogAppendTime
		}
		if r.TimestampType != want || r.Timestamp.IsZero() {
			return bad(fmt.Errorf("timestamp policy %s: the record's timestamp is %s (the topic's message.timestamp.type decides it)",
				s.policy.Policy, describeTimestampType(r.TimestampType)))
		}
	case "processing_time":
		r.Timestamp, r.TimestampType = s.now(), connector.TimestampProcessingTime
	case "field":
		t, err := s.fieldTime(r)
		if err != nil {
			return bad(fmt.Errorf("timestamp policy field %s: %w", s.policy.Field, err))
		}
		r.Timestamp, r.TimestampType = t, connector.TimestampEventField
	}
	return nil
}

func describeTimestampType(t connector.TimestampType) string {
	switch t {
	case connector.TimestampCreateTime:
		return "CreateTime"
	case connector.TimestampLogAppendTime:
		return "LogAppendTime"
	case connector.TimestampPublishTime:
		return "a Pub/Sub publish time"
	}
	return "of an unknown type"
}

var errNoField = errors.New("missing from the record")

func (s *stampingDecoder) fieldTime(r *connector.Record) (time.Time, error) {
	var v any = r.Fields
	for _, name := range s.path {
		m, ok := v.(map[string]any)
		if !ok {
			return time.Time{}, errNoField
		}
		if v, ok = m[name]; !ok {
			return time.Time{}, errNoField
		}
	}
	if v == nil {
		return time.Time{}, errors.New("is null")
	}
	return parseEventTime(v, s.policy.Format)
}

// parseEventTime reads v, a decoded field, as a time written in format.
func parseEventTime(v any, format string) (time.Time, error) {
	if t, ok := v.(time.Time); ok { // Avro timestamp logical types
		return t, nil
	}
	switch format {
	case "unix", "unix_ms":
		n, err := number(v)
		if err != nil {
			return time.Time{}, err
		}
		if format == "unix" {
			sec, frac := math.Modf(n)
			return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
		}
		return time.UnixMilli(int64(n)).UTC(), nil
	}
	str, ok := v.(string)
	if !ok {
		return time.Time{}, fmt.Errorf("is a %T, not a string in format %s", v, format)
	}
	layout := format
	if format == "" || format == "rfc3339" {
		layout = time.RFC3339Nano
	}
	t, err := time.Parse(layout, str)
	if err != nil {
		return time.Time{}, fmt.Errorf("parsing %q: %w", str, err)
	}
	return t, nil
}

func number(v any) (float64, error) {
	switch x := v.(type) {
	case float64:
		return x, nil
	case float32:
		return float64(x), nil
	case int:
		return float64(x), nil
	case int32:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case json.Number:
		return x.Float64()
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a number", x)
		}
		return f, nil
	}
	return 0, fmt.Errorf("is a %T, not a number", v)
}
