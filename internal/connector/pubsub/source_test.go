package pubsub

import (
	"log/slog"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/sluice-dev/sluice/internal/config"
)

// A message becomes a record: data as value untouched, attributes as
// headers in key order, the key as key_from says, the publish time as
// timestamp, and arrival order as offset.
func TestRecordFromMessage(t *testing.T) {
	at := time.Date(2026, 11, 22, 1, 2, 3, 0, time.UTC)
	m := &pubsub.Message{ID: "m-1", Data: []byte{0, 0xff, 'x'}, OrderingKey: "dev-7", PublishTime: at,
		Attributes: map[string]string{"z": "last", "a": "first", "device": "dev-9"}}
	for _, tc := range []struct{ keyFrom, want string }{
		{config.KeyFromOrderingKey, "dev-7"},
		{config.KeyFromMessageID, "m-1"},
		{"attribute:device", "dev-9"},
		{config.KeyFromNone, ""},
		{"attribute:missing", ""},
	} {
		s := &Source{cfg: config.PubSubSource{KeyFrom: tc.keyFrom}, topic: "alerts", log: slog.Default()}
		first := s.record(&pubsub.Message{Data: []byte("x")})
		rec := s.record(m)
		if string(rec.Key) != tc.want || (tc.want == "" && rec.Key != nil) {
			t.Errorf("key_from %s: key %q, want %q", tc.keyFrom, rec.Key, tc.want)
		}
		if string(rec.Value) != "\x00\xffx" || rec.Topic != "alerts" || !rec.Timestamp.Equal(at) || rec.Origin != m {
			t.Errorf("record %+v", rec)
		}
		if first.Offset != 0 || rec.Offset != 1 {
			t.Errorf("offsets %d, %d; want arrival order 0, 1", first.Offset, rec.Offset)
		}
		if len(rec.Headers) != 3 || rec.Headers[0].Key != "a" || rec.Headers[1].Key != "device" || string(rec.Headers[2].Value) != "last" {
			t.Errorf("headers %+v, want the attributes in key order", rec.Headers)
		}
	}
	// No ordering key: no key at all, not an empty one.
	s := &Source{cfg: config.PubSubSource{KeyFrom: config.KeyFromOrderingKey}, log: slog.Default()}
	if rec := s.record(&pubsub.Message{Data: []byte("x")}); rec.Key != nil || rec.Headers != nil {
		t.Errorf("plain message: key %q, headers %v", rec.Key, rec.Headers)
	}
}

// Regression: an empty Pub/Sub message became a null Kafka value, which
// is a delete marker on a compacted topic. Byte for byte means 0 bytes.
func TestEmptyMessageIsAnEmptyValueNotNull(t *testing.T) {
	s := &Source{cfg: config.PubSubSource{KeyFrom: config.KeyFromNone}, topic: "alerts", log: slog.Default()}
	rec := s.record(&pubsub.Message{Attributes: map[string]string{"a": "b"}})
	if rec.Value == nil || len(rec.Value) != 0 {
		t.Fatalf("value %#v; want empty, not null", rec.Value)
	}
}
