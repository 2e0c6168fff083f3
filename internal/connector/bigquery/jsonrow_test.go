package bigquery

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	bq "cloud.google.com/go/bigquery"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/sluice-dev/sluice/internal/bqemu"
	"github.com/sluice-dev/sluice/internal/codec"
	"github.com/sluice-dev/sluice/internal/connector"
)

// jsonTable has a column of every type a JSON value may go to, nested
// and repeated ones, names the map path finds by sanitising or by case,
// and the metadata columns.
var jsonTable = bq.Schema{
	{Name: "id", Type: bq.IntegerFieldType},
	{Name: "s", Type: bq.StringFieldType},
	{Name: "f", Type: bq.FloatFieldType},
	{Name: "b", Type: bq.BooleanFieldType},
	{Name: "ts", Type: bq.TimestampFieldType},
	{Name: "d", Type: bq.DateFieldType},
	{Name: "tm", Type: bq.TimeFieldType},
	{Name: "dt", Type: bq.DateTimeFieldType},
	{Name: "num", Type: bq.NumericFieldType},
	{Name: "bnum", Type: bq.BigNumericFieldType},
	{Name: "raw", Type: bq.BytesFieldType},
	{Name: "doc", Type: bq.JSONFieldType},
	{Name: "geo", Type: bq.GeographyFieldType},
	{Name: "first_name", Type: bq.StringFieldType},
	{Name: "Camel", Type: bq.IntegerFieldType},
	{Name: "tags", Type: bq.StringFieldType, Repeated: true},
	{Name: "ns", Type: bq.IntegerFieldType, Repeated: true},
	{Name: "docs", Type: bq.JSONFieldType, Repeated: true},
	{Name: "addr", Type: bq.RecordFieldType, Schema: bq.Schema{
		{Name: "street", Type: bq.StringFieldType},
		{Name: "zip", Type: bq.IntegerFieldType},
		{Name: "geo", Type: bq.RecordFieldType, Schema: bq.Schema{
			{Name: "lat", Type: bq.FloatFieldType}, {Name: "lon", Type: bq.FloatFieldType}}},
	}},
	{Name: "lines", Type: bq.RecordFieldType, Repeated: true, Schema: bq.Schema{
		{Name: "sku", Type: bq.StringFieldType}, {Name: "qty", Type: bq.IntegerFieldType},
		{Name: "at", Type: bq.TimestampFieldType}}},
}

var jsonMeta = []string{"topic", "partition", "offset", "timestamp", "key"}

// jsonEdgeCases are values the direct path must write as the map path
// does, or leave to it.
var jsonEdgeCases = []string{
	`{}`,
	` {"id": 1} `,
	`{"id":1,"s":"plain","f":1.5,"b":true,"ts":"2025-09-23T10:11:12.345678Z","d":"2025-02-28","tm":"23:59:59.999999","dt":"2025-09-23 10:11:12","num":"12.345","bnum":1e-20,"raw":"bytes","doc":{"z":[1,{"a":null}],"a":"x"},"geo":"POINT(1 2)"}`,
	`{"s":"esc \" \\ \/ \b\f\n\r\t \u00e9 \ud83d\ude00 \u0000"}`,
	`{"s":"unicode é 😀 中文"}`,
	`{"s":"bad utf8 ` + "\xff\xfe" + ` here"}`,
	`{"s":"lone surrogate \ud800 x"}`,
	`{"s":12345678901234567890123}`,
	`{"s":-0.5e+10}`,
	`{"s":true,"first_name":false}`,
	`{"id":9223372036854775807}`,
	`{"id":-9223372036854775808}`,
	`{"id":9223372036854775808}`,
	`{"id":1e3}`,
	`{"id":1.0}`,
	`{"id":1.5}`,
	`{"id":-0}`,
	`{"id":1E+2}`,
	`{"f":1e308}`,
	`{"f":1e309}`,
	`{"f":-1.2345678901234567e-300}`,
	`{"f":5}`,
	`{"f":"5"}`,
	`{"ts":1700000000000000}`,
	`{"ts":1.7e15}`,
	`{"ts":"2025-09-23"}`,
	`{"ts":"not a time"}`,
	`{"d":19000}`,
	`{"d":"2025-13-01"}`,
	`{"d":99999999999}`,
	`{"tm":"25:00"}`,
	`{"num":12.5}`,
	`{"num":"  7.25 "}`,
	`{"num":"1/3"}`,
	`{"num":123456789012345678901234567890.123456789}`,
	`{"bnum":"-0.00000000000000000000000000000000000001"}`,
	`{"raw":12}`,
	`{"doc":[1,2,[3]]}`,
	`{"doc":"a string"}`,
	`{"doc":1.50}`,
	`{"doc":{"dup":1,"dup":2}}`,
	`{"doc":null}`,
	`{"first-name":"sanitised"}`,
	`{"camel":7}`,
	`{"CAMEL":7}`,
	`{"Camel":7,"camel":8}`,
	`{"id":1,"id":2}`,
	`{"id":1,"id":null}`,
	`{"id":null,"id":3}`,
	`{"id":null}`,
	`{"tags":[]}`,
	`{"tags":["a","",  "c"]}`,
	`{"tags":["a",null]}`,
	`{"tags":"not an array"}`,
	`{"tags":[1,true]}`,
	`{"ns":[1,2,-3,1e2]}`,
	`{"ns":[[1]]}`,
	`{"docs":[{"a":1},[2],"three",null]}`,
	`{"docs":[{"a":1},[2],"three"]}`,
	`{"addr":{"street":"Main","zip":1000,"geo":{"lat":1.5,"lon":-2}}}`,
	`{"addr":{}}`,
	`{"addr":{"geo":{}}}`,
	`{"addr":{"zip":null,"street":"x"}}`,
	`{"addr":{"street":"x","street":"y"}}`,
	`{"addr":[]}`,
	`{"addr":"x"}`,
	`{"addr":{"unknown":1}}`,
	`{"lines":[{"sku":"a","qty":1},{"sku":"b","at":"2025-01-01T00:00:00+02:00"},{}]}`,
	`{"lines":{"k":{"sku":"a"}}}`,
	`{"lines":[{"sku":"a"},null]}`,
	`{"unknown":1}`,
	`{"unknown":null}`,
	`{"unknown":{}}`,
	`{"_sluice_topic":"spoofed"}`,
	`{"b":"true"}`,
	`{"b":1}`,
	`null`,
	` null `,
	`[]`,
	`"str"`,
	`{"id":1}x`,
	`{"id":1,}`,
	`{"id":01}`,
	`{"id":1.}`,
	`{"id":.5}`,
	`{"id":+1}`,
	`{"id":1e}`,
	`{"id":tru}`,
	`{"s":"unterminated}`,
	`{"s":"ctl ` + "\x01" + `"}`,
	`{"s":"bad escape \q"}`,
	`{"s":"bad \u12"}`,
	`{id:1}`,
	`{"id" 1}`,
	`{"id":1 "s":"x"}`,
	``,
	`{`,
	`{"addr":{"street":"x"`,
}

// mapRow encodes value as the map path does: decoded by the codec, then
// a dynamic message. ok false: the map path refuses it.
func mapRow(t testing.TB, dec connector.Decoder, plan *rowPlan, rec connector.Record) (*dynamicpb.Message, error) {
	t.Helper()
	if err := dec.Decode(context.Background(), &rec); err != nil {
		return nil, err
	}
	if rec.Fields == nil {
		return nil, noValue(&rec)
	}
	b, err := plan.encode(&rec, jsonMeta)
	if err != nil {
		return nil, err
	}
	m := dynamicpb.NewMessage(plan.md)
	if err := proto.Unmarshal(b, m); err != nil {
		t.Fatalf("the map row does not parse: %v", err)
	}
	return m, nil
}

// jsonTestSchema is jsonTable with the metadata columns.
func jsonTestSchema() bq.Schema {
	schema := append(bq.Schema(nil), jsonTable...)
	for _, m := range jsonMeta {
		schema = append(schema, metadataColumns[m])
	}
	return schema
}

func jsonTestSink(t testing.TB) (*Sink, *rowPlan, connector.Decoder) {
	t.Helper()
	dec, err := codec.NewDecoder(codec.Options{Value: codec.FormatJSON})
	if err != nil {
		t.Fatal(err)
	}
	plan, _, err := tableDescriptor(jsonTestSchema())
	if err != nil {
		t.Fatal(err)
	}
	s := &Sink{json: dec, cfg: sinkConfig(bqemu.Addrs{}, "t")}
	s.cfg.Metadata = jsonMeta
	s.tables = &tables{cfg: s.cfg}
	for _, m := range jsonMeta {
		s.tables.meta = append(s.tables.meta, metadataColumns[m])
	}
	return s, plan, dec
}

func jsonTestRecord(value string) connector.Record {
	return connector.Record{Topic: "orders", Partition: 2, Offset: 42, Key: []byte("k\xff"), Value: []byte(value)}
}

// checkJSONDirect encodes value both ways and fails unless the direct
// path's row, when it writes one, is the map path's. It reports whether
// the direct path wrote it.
func checkJSONDirect(t testing.TB, s *Sink, plan *rowPlan, dec connector.Decoder, value string) bool {
	t.Helper()
	rec := jsonTestRecord(value)
	var a rowArena
	row, err := a.encodeJSON(s, plan, &rec, 1)
	want, mapErr := mapRow(t, dec, plan, rec)
	if err != nil {
		if err != errJSONMisfit {
			t.Fatalf("%q: direct path error %v, want errJSONMisfit", value, err)
		}
		return false
	}
	if mapErr != nil {
		t.Fatalf("%q: the direct path wrote a row the map path refuses (%v)", value, mapErr)
	}
	got := dynamicpb.NewMessage(plan.md)
	if err := proto.Unmarshal(row, got); err != nil {
		t.Fatalf("%q: the direct row does not parse: %v", value, err)
	}
	if !proto.Equal(got, want) {
		t.Fatalf("%q:\n map path %v\n direct   %v", value, want, got)
	}
	return true
}

// TestJSONDirectMatchesTheMapPath encodes edge cases and random values
// both ways: every row the direct path writes is the map path's, and the
// values it can write it does write (it does not leave everything to the
// map path).
func TestJSONDirectMatchesTheMapPath(t *testing.T) {
	s, plan, dec := jsonTestSink(t)
	mustGoDirect := map[string]bool{
		jsonEdgeCases[0]: true, jsonEdgeCases[1]: true, jsonEdgeCases[2]: true, jsonEdgeCases[3]: true,
		jsonEdgeCases[4]: true, jsonEdgeCases[5]: true, `{"s":12345678901234567890123}`: true,
		`{"id":1e3}`: true, `{"first-name":"sanitised"}`: true, `{"camel":7}`: true,
		`{"addr":{"street":"Main","zip":1000,"geo":{"lat":1.5,"lon":-2}}}`:                true,
		`{"lines":[{"sku":"a","qty":1},{"sku":"b","at":"2025-01-01T00:00:00+02:00"},{}]}`: true,
		`{"docs":[{"a":1},[2],"three"]}`:                                                  true, `{"id":null}`: true, `{"unknown":null}`: true,
	}
	for _, v := range jsonEdgeCases {
		if direct := checkJSONDirect(t, s, plan, dec, v); !direct && mustGoDirect[v] {
			t.Errorf("%q went to the map path", v)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	direct := 0
	const n = 2000
	for range n {
		if checkJSONDirect(t, s, plan, dec, randomJSON(rng)) {
			direct++
		}
	}
	t.Logf("%d of %d random values written directly", direct, n)
	if direct < n/3 {
		t.Errorf("%d of %d random values written directly, want most", direct, n)
	}
}

// TestJSONMisfitsTakeTheMapPathInPlace: Sink.encode writes what the direct
// path leaves to the map path by the map path, in the record's place, and
// refuses bad values with the map path's error, naming the field.
func TestJSONMisfitsTakeTheMapPathInPlace(t *testing.T) {
	s, plan, _ := jsonTestSink(t)
	values := []string{`{"id":1}`, `{"id":2,"id":3}`, `{"id":"four"}`, `{"s":"x"}x`, `{"addr":{"zip":"z"}}`, `{"id":6}`}
	recs := make([]*connector.Record, len(values))
	for i, v := range values {
		r := jsonTestRecord(v)
		recs[i] = &r
	}
	tv := &tableVersion{name: "t", plan: plan, schema: jsonTestSchema()}
	units, bad, err := s.encode(context.Background(), tv, recs)
	if err != nil {
		t.Fatal(err)
	}
	if len(units) != 1 || len(units[0].recs) != 3 {
		t.Fatalf("units %v, want one of 3 rows", units)
	}
	for i, want := range []int{0, 1, 5} {
		if units[0].recs[i] != recs[want] {
			t.Fatalf("row %d is record %v, want %d: rows keep their records' order", i, units[0].recs[i], want)
		}
	}
	if m := mustParse(t, plan, units[0].rows[1]); m.Get(plan.column("id").fd).Int() != 3 {
		t.Fatalf("duplicate key: row %v, want the last id (3)", m)
	}
	if len(bad) != 3 {
		t.Fatalf("bad = %v, want 3", bad)
	}
	for i, want := range []struct{ reason, text string }{
		{"type", "field id: the string \"four\" does not fit a INTEGER column"},
		{"json", "decoding JSON"},
		{"type", "field addr.zip: the string \"z\""},
	} {
		if bad[i].Reason != want.reason || !strings.Contains(bad[i].Err.Error(), want.text) {
			t.Errorf("bad[%d] = %s: %v, want %s: ...%s...", i, bad[i].Reason, bad[i].Err, want.reason, want.text)
		}
	}
}

func mustParse(t testing.TB, plan *rowPlan, row []byte) *dynamicpb.Message {
	t.Helper()
	m := dynamicpb.NewMessage(plan.md)
	if err := proto.Unmarshal(row, m); err != nil {
		t.Fatal(err)
	}
	return m
}

// randomJSON is a random value for jsonTable: mostly fitting, sometimes
// not (wrong types, unknown and repeated keys, nulls).
func randomJSON(rng *rand.Rand) string {
	var b strings.Builder
	b.WriteByte('{')
	n := rng.IntN(8)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		name := jsonTable[rng.IntN(len(jsonTable))].Name
		if rng.IntN(20) == 0 {
			name = "unknown"
		}
		fmt.Fprintf(&b, "%q:", name)
		b.WriteString(randomJSONValue(rng, name, 0))
	}
	b.WriteByte('}')
	return b.String()
}

// fitting is, per scalar column, the scalars[i] that fits it.
var fitting = map[string]int{"id": 0, "ns": 0, "Camel": 0, "f": 1, "s": 4, "first_name": 4, "tags": 4, "geo": 4,
	"ts": 5, "dt": 5, "d": 6, "tm": 7, "num": 8, "bnum": 3, "b": 9, "raw": 4}

func randomJSONValue(rng *rand.Rand, column string, depth int) string {
	if rng.IntN(12) == 0 {
		return "null"
	}
	scalars := []func() string{
		func() string { return strconv.FormatInt(rng.Int64N(1<<62)-(1<<61), 10) },
		func() string { return strconv.FormatFloat(rng.NormFloat64()*1e6, 'g', -1, 64) },
		func() string { return strconv.FormatFloat(rng.NormFloat64(), 'e', -1, 64) },
		func() string { return fmt.Sprintf("%d.%03d", rng.IntN(1000), rng.IntN(1000)) },
		func() string { return strconv.Quote(fmt.Sprintf("txt %d é\t\"", rng.IntN(100))) },
		func() string { return `"2025-09-23T10:11:12.5Z"` },
		func() string { return `"2025-09-23"` },
		func() string { return `"10:11:12"` },
		func() string { return `"12.25"` },
		func() string { return []string{"true", "false"}[rng.IntN(2)] },
	}
	scalar := scalars[rng.IntN(len(scalars))]
	if i, ok := fitting[column]; ok && rng.IntN(4) > 0 {
		scalar = scalars[i]
	}
	if depth > 2 {
		return scalar()
	}
	switch column {
	case "addr":
		if rng.IntN(8) > 0 {
			return fmt.Sprintf(`{"street":%s,"zip":%s,"geo":{"lat":%s}}`, randomJSONValue(rng, "s", depth+1), randomJSONValue(rng, "id", depth+1), randomJSONValue(rng, "f", depth+1))
		}
	case "lines", "tags", "ns", "docs":
		if rng.IntN(8) > 0 {
			var items []string
			for range rng.IntN(4) {
				if column == "lines" {
					items = append(items, fmt.Sprintf(`{"sku":%s,"qty":%s}`, randomJSONValue(rng, "s", depth+1), randomJSONValue(rng, "id", depth+1)))
				} else {
					items = append(items, scalar())
				}
			}
			return "[" + strings.Join(items, ",") + "]"
		}
	case "doc":
		if rng.IntN(2) == 0 {
			return fmt.Sprintf(`{"k":[%s,%s]}`, scalar(), randomJSONValue(rng, "doc", depth+1))
		}
	}
	return scalar()
}

// FuzzJSONDirect: the direct path (and the router's skim for templates)
// never panics on any bytes, and a row it writes is the map path's.
func FuzzJSONDirect(f *testing.F) {
	for _, v := range jsonEdgeCases {
		f.Add([]byte(v))
	}
	s, plan, dec := jsonTestSink(f)
	f.Fuzz(func(t *testing.T, value []byte) {
		checkJSONDirect(t, s, plan, dec, string(value))
		jsonMembers(value, []string{"id", "addr"}) // the router's skim: no panic
	})
}

// TestJSONDirectSinkWritesWhatTheMapPathWrites writes the same JSON
// records through a sink that takes them undecoded and one that takes
// them decoded: the same tables (created from the first batch, grown by a
// later one bringing new fields, nested too), the same rows, the same
// records refused for the same reasons; a template over .Value works.
func TestJSONDirectSinkWritesWhatTheMapPathWrites(t *testing.T) {
	e, addrs := startEmulator(t, bqemu.Faults{})
	dec, err := codec.NewDecoder(codec.Options{Value: codec.FormatJSON})
	if err != nil {
		t.Fatal(err)
	}
	batches := [][]string{
		{`{"id":1,"kind":"a","s":"x","n":1.5,"addr":{"zip":10}}`, `{"id":2,"kind":"b","tags":["p","q"]}`},
		{`{"id":3,"kind":"a","s":"é \u00e9","new":true,"addr":{"zip":11,"street":"Main"}}`, `{"id":4,"kind":"a","n":"oops"}`,
			`{"id":5,"kind":"b","lines":[{"sku":"k","qty":2}]}`, `{"id":6,"kind":"a"}x`, `null`, `{"id":7,"kind":"b","id":8}`},
		{`{"id":9,"kind":"a","s":null,"new":false}`, `{"id":10,"kind":"b","empty":{}}`, `{"id":11}x`, `{"id":12,"ki`},
	}
	for table, suffixes := range map[string][]string{"{{.Topic}}": {""}, "{{.Topic}}_{{.Value.kind}}": {"_a", "_b"},
		`{{.Topic}}_{{index .Value "kind"}}x`: {"_ax", "_bx"}} {
		t.Run(table, func(t *testing.T) {
			cfgMap, cfgDirect := sinkConfig(addrs, strings.Replace(table, "{{.Topic}}", "viamap", 1)), sinkConfig(addrs, strings.Replace(table, "{{.Topic}}", "direct", 1))
			cfgMap.Metadata, cfgDirect.Metadata = []string{"offset"}, []string{"offset"}
			viaMap := newSink(t, cfgMap)
			direct := newSinkWith(t, Options{Config: cfgDirect, JSON: dec})
			if !direct.VisitsFields() {
				t.Fatal("the sink does not take JSON values undecoded")
			}
			var off int64
			for _, batch := range batches {
				var maps, raw []*connector.Record
				var want []string // the engine refuses what does not decode
				for _, v := range batch {
					off++
					r := &connector.Record{Topic: "t", Offset: off, Value: []byte(v)}
					m := *r
					if err := dec.Decode(context.Background(), &m); err != nil {
						want = append(want, fmt.Sprintf("%d %s", off, asRecordError(&m, "", err).Reason))
					} else {
						maps = append(maps, &m)
					}
					raw = append(raw, r)
				}
				badMap, badDirect := write(t, viaMap, maps), write(t, direct, raw)
				var got []string
				for _, re := range badDirect {
					got = append(got, fmt.Sprintf("%d %s", re.Record.Offset, re.Reason))
					if re.Reason == "type" && !strings.Contains(re.Err.Error(), "field ") {
						t.Fatalf("offset %d: %v, want the field named", re.Record.Offset, re.Err)
					}
				}
				for _, re := range badMap {
					want = append(want, fmt.Sprintf("%d %s", re.Record.Offset, re.Reason))
				}
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Fatalf("refused %v, want %v", got, want)
				}
			}
			for _, suffix := range suffixes {
				a, b := "viamap"+suffix, "direct"+suffix
				if sa, sb := tableSchema(t, addrs, a), tableSchema(t, addrs, b); schemaString(sa) != schemaString(sb) {
					t.Fatalf("table %s: schemas differ:\n map path %s\n direct   %s", suffix, schemaString(sa), schemaString(sb))
				}
				rowsA, rowsB := sortedRows(t, e, a), sortedRows(t, e, b)
				if len(rowsA) == 0 || fmt.Sprint(rowsA) != fmt.Sprint(rowsB) {
					t.Fatalf("table %s: rows differ:\n map path %v\n direct   %v", suffix, rowsA, rowsB)
				}
			}
		})
	}
}

// BenchmarkJSONRowEncode encodes a 20-field JSON object into a row (no
// sink, no emulator): decoded into a map then a dynamic message ("map"),
// and straight from the bytes ("direct").
//
//	go test -run '^$' -bench JSONRowEncode -benchmem ./internal/connector/bigquery/
func BenchmarkJSONRowEncode(b *testing.B) {
	s, _, dec := jsonTestSink(b)
	s.cfg.Metadata = nil
	value := []byte(`{"id":123456,"s":"value 123456 of field 1","f":41152.333333333336,"b":true,"ts":"2025-09-23T00:02:03.456Z",` +
		`"f05":123461,"s06":"value 123456 of field 6","f07":41152.333333333336,"b08":false,"ts09":"2025-09-23T00:02:03.456Z",` +
		`"f10":123466,"s11":"value 123456 of field 11","f12":41152.333333333336,"b13":true,"ts14":"2025-09-23T00:02:03.456Z",` +
		`"f15":123471,"s16":"value 123456 of field 16","f17":41152.333333333336,"b18":false,"amount":1234.56}`)
	var first connector.Record
	first.Value = value
	if err := dec.Decode(context.Background(), &first); err != nil {
		b.Fatal(err)
	}
	plan, _, err := tableDescriptor(inferColumns(first.Fields))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("map", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r := connector.Record{Value: value}
			if err := dec.Decode(context.Background(), &r); err != nil {
				b.Fatal(err)
			}
			if _, err := plan.encode(&r, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		var a rowArena
		for b.Loop() {
			r := connector.Record{Value: value}
			if _, err := a.encodeJSON(s, plan, &r, 1000); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestTemplateValueFields: the router decodes only the members a template
// reads as .Value.name, and whole values for any other use of .Value.
func TestTemplateValueFields(t *testing.T) {
	for text, want := range map[string][]string{
		"{{.Topic}}":                           {},
		"{{.Value.kind}}_{{.Value.region.id}}": {"kind", "region"},
		"{{if .Value.a}}{{.Value.b}}{{else}}{{$.Value.c}}{{end}}": {"a", "b", "c"},
		"{{printf \"%s-%d\" .Value.kind .Partition}}":             {"kind"},
		"{{.Value}}":                              nil,
		"{{index .Value \"kind\"}}":               nil,
		"{{with .Value}}{{.kind}}{{end}}":         nil,
		"{{range $k, $v := .Value}}{{$k}}{{end}}": nil,
		"{{template \"x\" .}}":                    nil,
	} {
		got, ok := templateValueFields(text)
		if ok != (want != nil) || !slices.Equal(got, want) {
			t.Errorf("%s: %v %v, want %v", text, got, ok, want)
		}
	}
	m, ok := jsonMembers([]byte(`{"a":{"x":[1,"}"]},"kind":"k1","b":null,"kind":"k2","z":[{"q":"\""}],"n":1.5e3}`), []string{"kind", "b", "n"})
	if !ok || fmt.Sprint(m) != "map[b:<nil> kind:k2 n:1.5e3]" {
		t.Fatalf("members %v %v", m, ok)
	}
}
