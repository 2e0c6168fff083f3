package config

import (
	"fmt"

	"github.com/sluice-dev/sluice/internal/transform"
)

// validateTransforms compiles every expression, so that `sluice validate`
// and `sluice run` name a bad one with its step and position before
// anything connects, and checks that reshaped values reach the sink.
func (p *Pipeline) validateTransforms(v *validator) {
	for _, prob := range transform.Check(p.Transforms) {
		v.add(prob.Path, prob.Msg)
	}
	if p.Format.Value == "avro-confluent" && p.Format.ReaderSchema != "" {
		// Every record is read with this schema: an expression reading a
		// field it lacks would fail on every record.
		for _, prob := range transform.CheckFields(p.Transforms, p.Route, readerSchemaFields(p.Format.ReaderSchema)) {
			v.add(prob.Path, prob.Msg)
		}
	}
	if !transform.ChangesFields(p.Transforms) {
		return
	}
	if p.Format.Value != "json" && p.Format.Value != "avro-confluent" {
		v.add("transforms", "set, drop, rename and mask change decoded records: set format.value to json or avro-confluent")
	}
	check := func(path string, s *Sink) {
		if k := s.Kafka; k != nil && (k.Format == nil || k.Format.Value == "raw") {
			// Without an encoder the Kafka sink sends the value's
			// original bytes, and the changes would be lost without a
			// word.
			v.add("transforms", fmt.Sprintf("set, drop, rename and mask change decoded records, which the kafka sink only writes with %s.kafka.format.value (json or avro-confluent)", path))
		}
		if s.PubSub != nil {
			v.add("transforms", fmt.Sprintf("set, drop, rename and mask change decoded records; the pubsub sink (%s) sends the original bytes (filter, key and headers work)", path))
		}
	}
	check("sink", &p.Sink)
	for _, name := range sortedSinkNames(p.Sinks) {
		s := p.Sinks[name]
		check("sinks."+name, &s)
	}
}
