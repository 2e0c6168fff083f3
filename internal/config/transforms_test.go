package config

import (
	"os"
	"strings"
	"testing"
)

func TestTransformsAreCompiledAtValidate(t *testing.T) {
	src := `
pipelines:
- name: ok
  source: {kafka: {brokers: [b:9092], topics: [t], group: g}}
  format: {value: json}
  transforms:
    - filter: 'value.kind != "test"'
    - set: {total_cents: 'int(value.amount * 100.0)'}
    - drop: [note, card.number]
    - rename: {uid: user_id}
    - mask: {email: sha256}
    - key: 'value.user_id'
    - headers: {source: '"web"'}
  sink: {file: {path: out.jsonl}}
- name: bad
  source: {kafka: {brokers: [b:9092], topics: [t], group: g}}
  format: {value: json}
  transforms:
    - filter: 'value.kind != "test"'
    - filter: 'value.kind =='
    - set: {total_cents: '1 + "a"'}
    - mask: {email: md5}
    - filtr: 'true'
  sink: {file: {path: out.jsonl}}
`
	_, err := Parse([]byte(src), noEnv)
	if err == nil {
		t.Fatal("bad expressions were accepted")
	}
	msg := err.Error()
	for _, want := range []string{
		`pipelines[1].transforms[1].filter: Syntax error`,
		`pipelines[1].transforms[2].set.total_cents: found no matching overload for '_+_' applied to '(int, string)' (at 1:3`,
		`pipelines[1].transforms[3].mask.email: "md5" is not one of sha256, redact`,
		`transforms[4].filtr: unknown key`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("problems lack %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "pipelines[0]") {
		t.Errorf("the good pipeline was reported:\n%s", msg)
	}
}

func TestFieldTransformsNeedDecodedValuesAndAnEncodingSink(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"raw value", `
name: x
source: {kafka: {brokers: [b:9092], topics: [t], group: g}}
transforms: [{drop: [a]}]
sink: {file: {path: out.jsonl}}
`, "transforms: set, drop, rename and mask change decoded records: set format.value"},
		{"kafka sink without format", `
name: x
source: {kafka: {brokers: [b:9092], topics: [t], group: g}}
format: {value: json}
transforms: [{set: {a: '1'}}]
sink: {kafka: {brokers: [b:9092], topic: o}}
`, "which the kafka sink only writes with sink.kafka.format.value"},
		{"pubsub sink", `
name: x
source: {kafka: {brokers: [b:9092], topics: [t], group: g}}
format: {value: json}
transforms: [{mask: {a: redact}}]
sink: {pubsub: {project: p, topic: t}}
`, "the pubsub sink (sink) sends the original bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), noEnv)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	// A filter on a raw value into a raw Kafka sink is fine: nothing is reshaped.
	ok := `
name: x
source: {kafka: {brokers: [b:9092], topics: [t], group: g}}
transforms: [{filter: 'value.size() > 0'}, {key: '"k"'}]
sink: {kafka: {brokers: [b:9092], topic: o}}
`
	if _, err := Parse([]byte(ok), noEnv); err != nil {
		t.Fatal(err)
	}
}

// The README's transforms example must stay valid.
func TestREADMETransformsExampleIsValid(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(readme), "## Transforms")
	if !ok {
		t.Fatal("README has no Transforms section")
	}
	_, block, _ := strings.Cut(sec, "```yaml\n")
	block, _, _ = strings.Cut(block, "```")
	if !strings.Contains(block, "transforms:") {
		t.Fatalf("no transforms example in:\n%s", block)
	}
	src := "name: x\nsource: {kafka: {brokers: [b:9092], topics: [t], group: g}}\nsink: {file: {path: out.jsonl}}\n" + block
	f, err := Parse([]byte(src), noEnv)
	if err != nil {
		t.Fatalf("README example: %v\n%s", err, src)
	}
	if n := len(f.Pipelines[0].Transforms); n != 7 {
		t.Fatalf("%d steps parsed, want 7", n)
	}
}

func TestRoutesAreCheckedAtValidate(t *testing.T) {
	good := `
name: r
source: {kafka: {brokers: [b:9092], topics: [t], group: g}}
format: {value: json}
sinks:
  orders: {sqlite: {path: o.db, staging_table: stg, create_table: true, merge: {every_records: 10, statements: ["DELETE FROM stg"]}}}
  rest: {file: {path: rest.jsonl}}
route:
  - when: 'value.kind == "order"'
    sink: orders
  - sink: rest
`
	if _, err := Parse([]byte(good), noEnv); err != nil {
		t.Fatal(err)
	}
	bad := `
name: r
source: {kafka: {brokers: [b:9092], topics: [t], group: g}}
format: {value: json}
delivery: exactly_once
sink: {file: {path: x.jsonl}}
sinks:
  orders: {file: {}}
  rest: {file: {path: rest.jsonl}}
  unused: {file: {path: u.jsonl}}
route:
  - when: 'value.kind =='
    sink: orders
  - sink: nowhere
  - when: 'true'
    sink: rest
`
	_, err := Parse([]byte(bad), noEnv)
	if err == nil {
		t.Fatal("bad routes accepted")
	}
	for _, want := range []string{
		"sink: use either sink or sinks with route, not both",
		"sinks.orders.file: delivery: exactly_once is not supported by the file sink",
		"sinks.orders.file.path: is required",
		"route[0].when: Syntax error",
		`route[1].sink: "nowhere" is not one of the pipeline's sinks`,
		"route[1].when: is required on every entry but the last",
		"route[2].when: the last entry is the default",
		"sinks.unused: no route sends records to unused",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("problems lack %q:\n%v", want, err)
		}
	}
}

// The README's routing example must stay valid.
func TestREADMERouteExampleIsValid(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(readme), "### Routing to several sinks")
	if !ok {
		t.Fatal("README has no routing section")
	}
	_, block, _ := strings.Cut(sec, "```yaml\n")
	block, _, _ = strings.Cut(block, "```")
	src := "name: x\nsource: {kafka: {brokers: [b:9092], topics: [t], group: g}}\nformat: {value: json}\n" + block
	f, err := Parse([]byte(src), func(string) (string, bool) { return "postgres://localhost/test", true })
	if err != nil {
		t.Fatalf("README example: %v\n%s", err, src)
	}
	if p := f.Pipelines[0]; len(p.Sinks) != 2 || len(p.Route) != 2 {
		t.Fatalf("sinks %v, route %v", p.Sinks, p.Route)
	}
}

// Regression: with a pinned reader schema, validate refused a template
// naming a field that a set step makes (the schema does not have it).
func TestTemplatesMayNameFieldsTransformsSet(t *testing.T) {
	src := `
name: s
source: {kafka: {brokers: [b:1], topics: [t], group: g}}
format:
  value: avro-confluent
  schema_registry: {url: "http://r:8081"}
  reader_schema: '{"type":"record","name":"Film","fields":[{"name":"id","type":"long"},{"name":"kind","type":"string"}]}'
transforms:
  - set: {region: 'value.kind == "a" ? "eu" : "us"'}
sink:
  file: {path: 'out.jsonl'}
dlq: {topic: 'dlq-{{.Value.region}}'}
on_error: dlq
`
	if _, err := Parse([]byte(src), nil); err != nil {
		t.Fatalf("a template naming a field a transform sets: %v", err)
	}
}
