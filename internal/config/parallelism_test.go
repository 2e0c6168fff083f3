package config

import (
	"strings"
	"testing"
)

func TestParallelismDefaultsAndRules(t *testing.T) {
	const src = "source: {kafka: {brokers: [x], topics: [t], group: g}}\n"
	const pg = "sink: {postgres: {dsn: postgres://x, table: t}}\n"
	tests := []struct {
		name   string
		yaml   string
		by     string
		errors []string
	}{
		{"by defaults to key", "parallelism: {workers: 16}\n" + pg, ByKey, nil},
		{"allow_duplicates makes round_robin the default", "parallelism: {workers: 4}\nallow_duplicates: true\n" + pg, ByRoundRobin, nil},
		{"exactly-once by key into SQL", "parallelism: {workers: 8, by: key}\ndelivery: exactly_once\n" + pg, ByKey, nil},
		{"workers out of range", "parallelism: {workers: 0, by: partition}\n" + pg, "", []string{"parallelism.workers: must be between 1 and 256"}},
		{"round_robin needs allow_duplicates", "parallelism: {workers: 4, by: round_robin}\n" + pg, "", []string{"parallelism.by: round_robin gives up per-key order; set allow_duplicates: true"}},
		{"round_robin with exactly-once", "parallelism: {workers: 4, by: round_robin}\ndelivery: exactly_once\n" + pg, "", []string{"parallelism.by: round_robin writes one partition's records on several workers in any order"}},
		{"allow_duplicates contradicts exactly-once", "parallelism: {workers: 4, by: key}\nallow_duplicates: true\ndelivery: exactly_once\n" + pg, "", []string{"allow_duplicates: contradicts delivery: exactly_once"}},
		{"allow_duplicates alone saves nothing", "allow_duplicates: true\n" + pg, "", []string{"allow_duplicates: only lets parallelism.by be round_robin"}},
		{"exactly-once into Kafka with workers by key", "parallelism: {workers: 4}\ndelivery: exactly_once\nsink: {kafka: {brokers: [x], topic: out}}\n", ByKey, nil},
		{"exactly-once into Kafka with workers by partition", "parallelism: {workers: 4, by: partition}\ndelivery: exactly_once\nsink: {kafka: {brokers: [x], topic: out}}\n", ByPartition, nil},
		{"exactly-once into Kafka round_robin", "parallelism: {workers: 4, by: round_robin}\ndelivery: exactly_once\nsink: {kafka: {brokers: [x], topic: out}}\n", "", []string{"parallelism.by: round_robin writes one partition's records on several workers in any order"}},
		{"exactly-once into a routed Kafka sink with workers", "parallelism: {workers: 4}\ndelivery: exactly_once\nsinks: {rest: {kafka: {brokers: [x], topic: out}}}\nroute: [{sink: rest}]\n", "", []string{"parallelism.workers: delivery: exactly_once into the routed kafka sink rest commits"}},
		{"exactly-once into Kafka with one worker", "parallelism: {workers: 1}\ndelivery: exactly_once\nsink: {kafka: {brokers: [x], topic: out}}\n", ByKey, nil},
		{"unknown distribution", "parallelism: {workers: 2, by: hash}\n" + pg, "", []string{`parallelism.by: "hash" is not one of key, partition, round_robin`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse([]byte("name: p\n"+src+tc.yaml), noEnv)
			if len(tc.errors) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if got := f.Pipelines[0].Parallelism.By; got != tc.by {
					t.Fatalf("by = %q, want %q", got, tc.by)
				}
				return
			}
			for _, w := range tc.errors {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}
