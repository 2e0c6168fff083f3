package pipeline

import (
	"testing"

	"github.com/sluice-dev/sluice/internal/config"
)

// TestEngineDefaultsAgreeWithConfig: the config package sets every
// user-facing default (and validate --print shows it); the engine's own
// zero-value guards, for library callers that build Options by hand, must
// run a pipeline the same way.
func TestEngineDefaultsAgreeWithConfig(t *testing.T) {
	f, err := config.Parse([]byte(`
name: x
source: {kafka: {brokers: [b:9092], topics: [t], group: g}}
sink: {file: {path: out}}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	p := f.Pipelines[0]
	var o Options
	o.defaults()
	for _, c := range []struct {
		name         string
		engine, conf any
	}{
		{"source consumers", o.Consumers, p.Source.Consumers()},
		{"on_error", string(o.OnError), p.OnError},
		{"batch.max_records", o.BatchRecords, p.Batch.MaxRecords},
		{"batch.max_bytes", o.BatchBytes, p.Batch.MaxBytes},
		{"batch.linger", o.Linger, p.Batch.Linger},
		{"limits.max_in_flight_records", o.MaxInFlightRecords, p.Limits.MaxInFlightRecords},
		{"limits.max_in_flight_bytes", o.MaxInFlightBytes, p.Limits.MaxInFlightBytes},
		{"shutdown_timeout", o.ShutdownTimeout, p.ShutdownTimeout},
		{"max_retry_time", o.MaxRetryTime, p.MaxRetryTime},
	} {
		if c.engine != c.conf {
			t.Errorf("%s: the engine defaults to %v, config to %v", c.name, c.engine, c.conf)
		}
	}
}
