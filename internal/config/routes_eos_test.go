package config

import (
	"strings"
	"testing"
)

func TestExactlyOnceRoutesAreCheckedAtValidate(t *testing.T) {
	const head = `
name: r
source: {kafka: {brokers: [b:9092], topics: [t], group: g%s}}
format: {value: json}
delivery: exactly_once
route:
  - when: 'value.kind == "order"'
    sink: orders
  - sink: rest
sinks:
  orders: {postgres: {dsn: "postgres://localhost/test", table: orders, create_table: true}}
`
	for _, tc := range []struct {
		name, startFrom, rest, want string
	}{
		{"postgres and kafka", "", `  rest: {kafka: {brokers: [b:9092], topic: rest}}`, ""},
		{"two kafka sinks", "", `  rest: {kafka: {brokers: [b:9092], topic: rest}}
  more: {kafka: {brokers: [b:9092], topic: more}}`, "a route can have one kafka sink, not 2"},
		{"start from latest", ", start_from: latest", `  rest: {kafka: {brokers: [b:9092], topic: rest}}`, "source.kafka.start_from: delivery: exactly_once with a kafka and a database sink"},
		{"a file sink", "", `  rest: {file: {path: rest.jsonl}}`, "sinks.rest.file: delivery: exactly_once is not supported by the file sink"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(head, "%s", tc.startFrom, 1) + tc.rest + "\n"
			if strings.Contains(tc.rest, "more:") {
				src = strings.Replace(src, "  - sink: rest", "  - when: 'false'\n    sink: more\n  - sink: rest", 1)
			}
			_, err := Parse([]byte(src), noEnv)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("accepted, want %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("problems lack %q:\n%v", tc.want, err)
			}
		})
	}
}
