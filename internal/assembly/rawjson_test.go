package assembly

import (
	"testing"

	"github.com/sluice-dev/sluice/internal/config"
)

// The JSON fast path hands the sink new bytes with no decoded fields: only
// a Kafka sink encoding JSON to a fixed topic may get them, with nothing
// in between that reads the fields.
func TestRawJSONSinkOnlyWhereNothingReadsTheFields(t *testing.T) {
	kafkaJSON := func() config.Sink {
		return config.Sink{Kafka: &config.KafkaSink{Topic: "out", Format: &config.Format{Value: "json"}}}
	}
	for _, tc := range []struct {
		name string
		edit func(p *config.Pipeline)
		want bool
	}{
		{"json into a kafka json sink", func(*config.Pipeline) {}, true},
		{"avro values", func(p *config.Pipeline) { p.Format.Value = "avro-confluent" }, false},
		{"kafka sink writing the source bytes", func(p *config.Pipeline) { p.Sink.Kafka.Format = nil }, false},
		{"kafka sink encoding avro", func(p *config.Pipeline) { p.Sink.Kafka.Format.Value = "avro-confluent" }, false},
		{"topic template", func(p *config.Pipeline) { p.Sink.Kafka.Topic = "out-{{.Value.kind}}" }, false},
		{"timestamp from a field", func(p *config.Pipeline) { p.Timestamp.Policy = config.TimestampField }, false},
		{"several sinks", func(p *config.Pipeline) { p.Sinks = map[string]config.Sink{"a": kafkaJSON()} }, false},
		{"file sink", func(p *config.Pipeline) { p.Sink = config.Sink{File: &config.FileSink{Path: "x"}} }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := config.Pipeline{Format: config.Format{Value: "json"}, Sink: kafkaJSON()}
			tc.edit(&p)
			if got := rawJSONSink(&p); got != tc.want {
				t.Errorf("rawJSONSink = %v, want %v", got, tc.want)
			}
		})
	}
}
