package config

import (
	"strings"
	"testing"
)

// With a pinned reader schema, validate names an expression that reads a
// field the schema does not have, with its position.
func TestTransformsAreCheckedAgainstTheReaderSchema(t *testing.T) {
	src := `
name: s
source: {kafka: {brokers: [b:1], topics: [t], group: g}}
format:
  value: avro-confluent
  schema_registry: {url: "http://r:8081"}
  reader_schema: '{"type":"record","name":"Film","fields":[{"name":"id","type":"long"},{"name":"kind","type":"string"}]}'
transforms:
  - filter: 'value.knd != "test"'
  - set: {region: 'value.kind == "a" ? "eu" : "us"'}
  - key: 'value.region'
sink:
  file: {path: 'out.jsonl'}
`
	_, err := Parse([]byte(src), nil)
	if err == nil {
		t.Fatal("a filter on a field the reader schema lacks was accepted")
	}
	want := `transforms[0].filter: value has no field "knd" here (known: id, kind;`
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), `(at 1:1 in "value.knd != \"test\"")`) {
		t.Fatalf("problems lack %q with its position:\n%v", want, err)
	}
	if strings.Contains(err.Error(), "region") {
		t.Fatalf("a field a set step makes was refused:\n%v", err)
	}
}
