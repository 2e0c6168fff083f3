package sql

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/coerce"
)

// Timestamps in strings: RFC 3339 and the SQL spelling with a space, with
// or without a zone (no zone = UTC), or a bare date.
var timestampLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999Z0700",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02",
}

// toTimestamp accepts time.Time, strings in timestampLayouts, and numbers
// as Unix epoch milliseconds (the Kafka and Debezium convention). The
// result is in UTC.
func toTimestamp(v any) (any, error) {
	var t time.Time
	switch x := v.(type) {
	case time.Time:
		t = x
	case string:
		p, err := parseTimestamp(strings.TrimSpace(x))
		if err != nil {
			return nil, err
		}
		t = p
	default:
		s, ok := numberText(v)
		if !ok {
			return nil, fmt.Errorf("%s is not a timestamp", describeValue(v))
		}
		ms, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			f, ferr := strconv.ParseFloat(s, 64)
			if ferr != nil {
				return nil, fmt.Errorf("%s is not a timestamp (epoch milliseconds)", s)
			}
			ms = int64(f)
		}
		t = time.UnixMilli(ms)
	}
	t = t.UTC()
	if y := t.Year(); y < 1 || y > 9999 {
		return nil, fmt.Errorf("%s is outside the years 1 to 9999", t.Format(time.RFC3339))
	}
	return t, nil
}

func parseTimestamp(s string) (time.Time, error) {
	if t, ok := coerce.Time(s, timestampLayouts); ok {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%s is not a timestamp (use RFC 3339, e.g. 2024-05-01T12:00:00Z)", describeValue(s))
}

func toDate(v any) (any, error) {
	var t time.Time
	switch x := v.(type) {
	case time.Time:
		t = x
	case string:
		p, err := parseTimestamp(strings.TrimSpace(x))
		if err != nil {
			return nil, fmt.Errorf("%s is not a date (use 2006-01-02)", describeValue(v))
		}
		t = p
	default:
		return nil, fmt.Errorf("%s is not a date (use 2006-01-02)", describeValue(v))
	}
	y, m, d := t.Date()
	if y < 1 || y > 9999 {
		return nil, fmt.Errorf("%s is outside the years 1 to 9999", describeValue(v))
	}
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC), nil
}

// toTimeOfDay returns the time since midnight.
func toTimeOfDay(v any) (any, error) {
	switch x := v.(type) {
	case time.Duration:
		if x < 0 || x >= 24*time.Hour {
			return nil, fmt.Errorf("%v is not a time of day", x)
		}
		return x, nil
	case time.Time:
		h, m, s := x.Clock()
		return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(s)*time.Second + time.Duration(x.Nanosecond()), nil
	case string:
		if t, ok := coerce.Time(strings.TrimSpace(x), []string{"15:04:05.999999999", "15:04"}); ok {
			return toTimeOfDay(t)
		}
	}
	return nil, fmt.Errorf("%s is not a time of day (use 15:04:05)", describeValue(v))
}

// toJSON encodes any value as JSON text; a string becomes a JSON string.
func toJSON(v any) (any, error) {
	b, err := json.Marshal(jsonSafe(v))
	if err != nil {
		return nil, fmt.Errorf("encoding as JSON: %w", err)
	}
	return string(b), nil
}

// jsonSafe replaces values encoding/json would render badly: *big.Rat
// (which marshals as "1/3") becomes a JSON number.
func jsonSafe(v any) any {
	switch x := v.(type) {
	case *big.Rat:
		t, _ := numberText(x)
		return json.Number(t)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonSafe(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonSafe(e)
		}
		return out
	}
	return v
}

// toUUID accepts the 36-character form (any case, optional braces), 32 hex
// digits, or 16 bytes, and returns the lower-case 36-character form.
func toUUID(v any) (any, error) {
	var raw []byte
	switch x := v.(type) {
	case []byte:
		if len(x) == 16 {
			raw = x
		}
	case [16]byte:
		raw = x[:]
	case string:
		s := strings.Trim(strings.TrimSpace(x), "{}")
		s = strings.ReplaceAll(s, "-", "")
		if len(s) == 32 {
			if b, err := hex.DecodeString(s); err == nil {
				raw = b
			}
		}
	}
	if raw == nil {
		return nil, fmt.Errorf("%s is not a UUID", describeValue(v))
	}
	h := hex.EncodeToString(raw)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
}
