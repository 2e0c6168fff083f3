package codec

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/connector"
)

const personSchema = `{"type":"record","name":"Person","namespace":"t","fields":[
	{"name":"name","type":"string"},
	{"name":"age","type":"int"},
	{"name":"tags","type":{"type":"array","items":"string"}},
	{"name":"attrs","type":{"type":"map","values":"long"}},
	{"name":"kind","type":{"type":"enum","name":"Kind","symbols":["A","B"]}},
	{"name":"ok","type":"boolean"},
	{"name":"nick","type":["null","string"],"default":null}]}`

var person = map[string]any{
	"name": "Al", "age": int64(30), "tags": []any{"x"}, "attrs": map[string]any{"k": int64(5)},
	"kind": "B", "ok": true, "nick": nil,
}

func field(name, typ string) string {
	return fmt.Sprintf(`{"type":"record","name":"R%s","fields":[{"name":"f","type":%s}]}`, name, typ)
}

func long(v int64) []byte {
	w := &avroWriter{}
	w.writeLong(v)
	return w.buf
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestDecodePersonFillsFieldsAndSchema(t *testing.T) {
	fake := fakeRegistry(t, map[int]string{1: personSchema})
	dec := valueDecoderFor(t, fake.URL())
	rec := &connector.Record{Value: wire(1, avroBody(t, personSchema, person))}
	if err := dec.Decode(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if !sameValue(map[string]any(rec.Fields), map[string]any(person)) {
		t.Errorf("Fields = %#v, want %#v", rec.Fields, person)
	}
	s := rec.Schema
	if s.ID != 1 || s.Name != "t.Person" || len(s.Fields) != 7 {
		t.Fatalf("Schema = %+v", s)
	}
	want := []connector.Field{
		{Name: "name", Type: connector.TypeString},
		{Name: "age", Type: connector.TypeInt},
		{Name: "tags", Type: connector.TypeArray, Items: &connector.Field{Type: connector.TypeString}},
		{Name: "attrs", Type: connector.TypeMap, Items: &connector.Field{Type: connector.TypeInt}},
		{Name: "kind", Type: connector.TypeString},
		{Name: "ok", Type: connector.TypeBool},
		{Name: "nick", Type: connector.TypeString, Nullable: true},
	}
	for i, f := range want {
		got := s.Fields[i]
		if got.Name != f.Name || got.Type != f.Type || got.Nullable != f.Nullable ||
			(f.Items != nil) != (got.Items != nil) || f.Items != nil && f.Items.Type != got.Items.Type {
			t.Errorf("field %d = %+v, want %+v", i, got, f)
		}
	}
}

func TestPortableSchemaTypes(t *testing.T) {
	schema := `{"type":"record","name":"X","fields":[
		{"name":"dec","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":3}},
		{"name":"date","type":{"type":"int","logicalType":"date"}},
		{"name":"t","type":{"type":"long","logicalType":"time-micros"}},
		{"name":"ts","type":["null",{"type":"long","logicalType":"timestamp-millis"}]},
		{"name":"lts","type":{"type":"long","logicalType":"local-timestamp-micros"}},
		{"name":"id","type":{"type":"string","logicalType":"uuid"}},
		{"name":"fx","type":{"type":"fixed","name":"F","size":2}},
		{"name":"multi","type":["null","string","long"]},
		{"name":"rec","type":{"type":"record","name":"In","fields":[{"name":"a","type":"double","doc":"the a"}]}},
		{"name":"self","type":["null",{"type":"record","name":"Node","fields":[{"name":"next","type":["null","Node"]}]}]}]}`
	s, err := parseSchema(schema, nil)
	if err != nil {
		t.Fatal(err)
	}
	ps := portableSchema(s, 9)
	got := map[string]connector.Field{}
	for _, f := range ps.Fields {
		got[f.Name] = f
	}
	checks := []struct {
		name     string
		typ      connector.FieldType
		nullable bool
	}{
		{"dec", connector.TypeDecimal, false}, {"date", connector.TypeDate, false},
		{"t", connector.TypeTime, false}, {"ts", connector.TypeTimestamp, true},
		{"lts", connector.TypeLocalTimestamp, false}, {"id", connector.TypeUUID, false},
		{"fx", connector.TypeBytes, false}, {"multi", connector.TypeJSON, true},
		{"rec", connector.TypeRecord, false}, {"self", connector.TypeRecord, true},
	}
	for _, c := range checks {
		if f := got[c.name]; f.Type != c.typ || f.Nullable != c.nullable {
			t.Errorf("%s = %s nullable=%v, want %s nullable=%v", c.name, f.Type, f.Nullable, c.typ, c.nullable)
		}
	}
	if f := got["dec"]; f.Precision != 9 || f.Scale != 3 {
		t.Errorf("dec precision/scale = %d/%d", f.Precision, f.Scale)
	}
	if f := got["rec"]; len(f.Fields) != 1 || f.Fields[0].Type != connector.TypeFloat || f.Fields[0].Doc != "the a" {
		t.Errorf("rec fields = %+v", f.Fields)
	}
	// The recursion is cut: Node.next refers back to Node.
	if f := got["self"]; len(f.Fields) != 1 || f.Fields[0].Type != connector.TypeJSON {
		t.Errorf("self fields = %+v", f.Fields)
	}
}

func TestBadInputReasons(t *testing.T) {
	strSchema := field("s", `"string"`)
	schemas := map[int]string{
		1: personSchema,
		2: strSchema,
		3: field("a", `{"type":"array","items":"long"}`),
		4: field("n", `{"type":"array","items":"null"}`),
		5: field("m", `{"type":"map","values":"string"}`),
		6: field("e", `{"type":"enum","name":"E","symbols":["X"]}`),
		7: field("b", `"boolean"`),
		8: field("u", `["null","string"]`),
		9: field("d", `{"type":"bytes","logicalType":"decimal","precision":4,"scale":2}`),
	}
	fake := fakeRegistry(t, schemas)
	fake.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		switch r.URL.Path {
		case "/schemas/ids/77":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"schema":"{\"type\":\"record\",\"name\":\"NoFields\"}"}`)
			return true
		case "/schemas/ids/78":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"schema":"syntax = \"proto3\";","schemaType":"PROTOBUF"}`)
			return true
		}
		return false
	})
	good := avroBody(t, personSchema, person)
	cases := []struct {
		name, reason, msg string
		value             []byte
	}{
		{"truncated header", ReasonWireFormat, "shorter than the 5-byte", []byte{0, 0, 0}},
		{"wrong magic byte", ReasonWireFormat, "magic byte is 0x01", cat([]byte{1, 0, 0, 0, 1}, good)},
		{"json value", ReasonWireFormat, "look like JSON", []byte(`{"name":"Al"}`)},
		{"unknown schema id", ReasonUnknownSchema, "schema id 99 is not in the registry", wire(99, good)},
		{"unparsable schema", ReasonSchemaParse, "schema 77", wire(77, good)},
		{"protobuf schema", ReasonSchemaParse, "PROTOBUF, not Avro", wire(78, good)},
		{"truncated body", ReasonAvroDecode, "unexpected end", wire(1, good[:len(good)-3])},
		{"trailing bytes", ReasonAvroDecode, "1 bytes left after the value", wire(1, cat(good, []byte{0}))},
		{"huge string length", ReasonAvroDecode, "string length 1099511627776 exceeds the", wire(2, long(1<<40))},
		{"negative string length", ReasonAvroDecode, "string length -3", wire(2, long(-3))},
		{"invalid utf-8", ReasonAvroDecode, "not valid UTF-8", wire(2, cat(long(2), []byte{0xff, 0xfe}))},
		{"huge array count", ReasonAvroDecode, "cannot fit in the", wire(3, cat(long(1<<50), long(1)))},
		{"huge negative block", ReasonAvroDecode, "block size", wire(3, cat(long(-5), long(1<<40)))},
		{"array of nulls too long", ReasonAvroDecode, "items that take no bytes", wire(4, long(1<<40))},
		{"huge map count", ReasonAvroDecode, "cannot fit", wire(5, long(1<<30))},
		{"bad enum index", ReasonAvroDecode, "enum index 3", wire(6, long(3))},
		{"bad boolean", ReasonAvroDecode, "boolean byte is 7", wire(7, []byte{7})},
		{"bad union index", ReasonAvroDecode, "union branch index 5", wire(8, long(5))},
		{"varint overflow", ReasonAvroDecode, "varint", wire(2, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})},
		{"decimal longer than input", ReasonAvroDecode, "decimal length", wire(9, long(100))},
		{"path in nested error", ReasonAvroDecode, "at tags[0]:", wire(1, cat(long(2), []byte("Al"), long(30), long(1), long(50)))},
	}
	dec := valueDecoderFor(t, fake.URL())
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := &connector.Record{Topic: "t", Partition: 2, Offset: 7, Value: c.value}
			err := dec.Decode(context.Background(), rec)
			var re *connector.RecordError
			if !errors.As(err, &re) {
				t.Fatalf("Decode = %v, want a *connector.RecordError", err)
			}
			if re.Reason != c.reason || re.Record != rec || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("Decode = %q (reason %q), want reason %q mentioning %q", err, re.Reason, c.reason, c.msg)
			}
			if !strings.Contains(err.Error(), "t/2@7") {
				t.Errorf("error %q does not name the record", err)
			}
		})
	}
}

func TestUnknownSchemaIDIsAskedOnce(t *testing.T) {
	fake := fakeRegistry(t, map[int]string{1: personSchema})
	dec := valueDecoderFor(t, fake.URL())
	for range 3 {
		err := dec.Decode(context.Background(), &connector.Record{Value: wire(42, []byte{0})})
		if reasonOf(err) != ReasonUnknownSchema {
			t.Fatalf("Decode = %v, want unknown-schema", err)
		}
	}
	if n := dec.RegistryLookups(); n != 1 {
		t.Errorf("RegistryLookups = %d, want 1: an unknown id is remembered", n)
	}
}

func TestOneRegistryLookupPerSchemaID(t *testing.T) {
	other := field("s", `"string"`)
	fake := fakeRegistry(t, map[int]string{1: personSchema, 2: other})
	dec := valueDecoderFor(t, fake.URL())
	a := wire(1, avroBody(t, personSchema, person))
	b := wire(2, avroBody(t, other, map[string]any{"f": "x"}))
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				v := a
				if (g+i)%2 == 0 {
					v = b
				}
				if err := dec.Decode(context.Background(), &connector.Record{Value: v}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := dec.RegistryLookups(); n != 2 {
		t.Errorf("RegistryLookups = %d after 400 records of 2 schema ids from 8 goroutines, want 2", n)
	}
}

func TestRegistryDownIsTransientAndRecovers(t *testing.T) {
	fake := fakeRegistry(t, map[int]string{1: personSchema})
	var down sync.Mutex
	isDown := true
	fake.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		down.Lock()
		defer down.Unlock()
		if isDown {
			http.Error(w, `{"error_code":50001,"message":"store is down"}`, http.StatusServiceUnavailable)
		}
		return isDown
	})
	dec := valueDecoderFor(t, fake.URL())
	rec := &connector.Record{Value: wire(1, avroBody(t, personSchema, person))}
	err := dec.Decode(context.Background(), rec)
	if err == nil || reasonOf(err) != "" || connector.IsPermanent(err) {
		t.Fatalf("Decode with the registry answering 503 = %v, want a transient error", err)
	}
	down.Lock()
	isDown = false
	down.Unlock()
	if err := dec.Decode(context.Background(), rec); err != nil {
		t.Fatalf("Decode after the registry came back = %v", err)
	}
	if rec.Fields["name"] != "Al" {
		t.Errorf("Fields = %v", rec.Fields)
	}
}

func TestRegistryUnreachableIsTransient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	dec := valueDecoderFor(t, "http://"+addr)
	rec := &connector.Record{Value: wire(1, avroBody(t, personSchema, person))}
	if err := dec.Decode(context.Background(), rec); err == nil || reasonOf(err) != "" || connector.IsPermanent(err) {
		t.Fatalf("Decode with connection refused = %v, want a transient error", err)
	}

	// The registry comes up at that address: decoding works.
	fake := fakeRegistry(t, map[int]string{1: personSchema})
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	srv := httptest.NewUnstartedServer(fake.Handler())
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	if err := dec.Decode(context.Background(), rec); err != nil {
		t.Fatalf("Decode after the registry came up = %v", err)
	}
}

func TestRegistryTimeoutIsTransient(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	t.Cleanup(slow.Close)
	dec, err := NewDecoder(Options{Value: FormatAvroConfluent, SchemaRegistry: RegistryOptions{URL: slow.URL, Timeout: 100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	err = dec.Decode(context.Background(), &connector.Record{Value: wire(1, []byte{0})})
	if err == nil || reasonOf(err) != "" || connector.IsPermanent(err) {
		t.Fatalf("Decode against a registry that does not answer = %v, want a transient error", err)
	}
}

func TestRegistryRejectingCredentialsIsPermanent(t *testing.T) {
	fake := fakeRegistry(t, map[int]string{1: personSchema})
	fake.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("Authorization") != "Bearer right" {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error_code":40101,"message":"Unauthorized"}`)
			return true
		}
		return false
	})
	rec := &connector.Record{Value: wire(1, avroBody(t, personSchema, person))}
	for token, wantErr := range map[string]bool{"wrong": true, "right": false} {
		dec, err := NewDecoder(Options{Value: FormatAvroConfluent, SchemaRegistry: RegistryOptions{URL: fake.URL(), BearerToken: token}})
		if err != nil {
			t.Fatal(err)
		}
		err = dec.Decode(context.Background(), rec)
		if wantErr && (!connector.IsPermanent(err) || reasonOf(err) != "") {
			t.Errorf("token %q: Decode = %v, want a permanent, non-record error", token, err)
		}
		if !wantErr && err != nil {
			t.Errorf("token %q: Decode = %v", token, err)
		}
	}
}

func TestHostileLengthsDoNotAllocate(t *testing.T) {
	schemas := map[int]string{
		2: field("s", `"string"`),
		3: field("a", `{"type":"array","items":"string"}`),
		4: field("m", `{"type":"map","values":{"type":"array","items":"null"}}`),
		5: field("b", `"bytes"`),
	}
	fake := fakeRegistry(t, schemas)
	dec := valueDecoderFor(t, fake.URL())
	inputs := [][]byte{
		wire(2, long(1<<62)),
		wire(3, long(1<<62)),
		wire(3, cat(long(-(1<<40)), long(2))),
		wire(4, cat(long(1), long(0), long(1<<40))),
		wire(5, long(1<<30)),
		wire(5, cat(long(1<<20), make([]byte, 100))),
	}
	for _, in := range inputs { // warm the schema cache
		_ = dec.Decode(context.Background(), &connector.Record{Value: in})
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range 100 {
		for _, in := range inputs {
			if err := dec.Decode(context.Background(), &connector.Record{Value: in}); reasonOf(err) != ReasonAvroDecode {
				t.Fatalf("Decode(%x) = %v, want avro-decode", in, err)
			}
		}
	}
	runtime.ReadMemStats(&after)
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 4<<20 {
		t.Errorf("600 hostile records allocated %d bytes; lengths must be checked before allocating", grown)
	}
}

func TestDeepRecursionIsBounded(t *testing.T) {
	linked := `{"type":"record","name":"Node","fields":[{"name":"next","type":["null","Node"]}]}`
	fake := fakeRegistry(t, map[int]string{1: linked})
	dec := valueDecoderFor(t, fake.URL())
	// 100,000 levels of "branch 1" then null: far past the depth limit.
	body := make([]byte, 100_001)
	for i := range body[:100_000] {
		body[i] = 2
	}
	err := dec.Decode(context.Background(), &connector.Record{Value: wire(1, body)})
	if reasonOf(err) != ReasonAvroDecode || !strings.Contains(err.Error(), "nesting deeper") {
		t.Fatalf("Decode = %v, want avro-decode about nesting", err)
	}
	// A reasonable depth decodes.
	ok := append(make([]byte, 0, 51), bytesRepeat(2, 50)...)
	ok = append(ok, 0)
	rec := &connector.Record{Value: wire(1, ok)}
	if err := dec.Decode(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
}

func bytesRepeat(b byte, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}

func TestUnionsDecodeToTheirValue(t *testing.T) {
	schema := `{"type":"record","name":"U","fields":[
		{"name":"opt","type":["null","string"]},
		{"name":"optFirst","type":["long","null"]},
		{"name":"multi","type":["null","string","long","double","boolean",{"type":"record","name":"In","fields":[{"name":"a","type":"int"}]}]}]}`
	fake := fakeRegistry(t, map[int]string{1: schema})
	dec := valueDecoderFor(t, fake.URL())
	for _, v := range []map[string]any{
		{"opt": "x", "optFirst": int64(3), "multi": "s"},
		{"opt": nil, "optFirst": nil, "multi": int64(-9)},
		{"opt": "", "optFirst": int64(0), "multi": 2.5},
		{"opt": nil, "optFirst": nil, "multi": true},
		{"opt": nil, "optFirst": nil, "multi": map[string]any{"a": int64(1)}},
		{"opt": nil, "optFirst": nil, "multi": nil},
	} {
		rec := &connector.Record{Value: wire(1, avroBody(t, schema, v))}
		if err := dec.Decode(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
		if !sameValue(map[string]any(rec.Fields), map[string]any(v)) {
			t.Errorf("Fields = %#v, want %#v", rec.Fields, v)
		}
	}
}

func TestLogicalTypesDecode(t *testing.T) {
	schema := `{"type":"record","name":"L","fields":[
		{"name":"dec","type":{"type":"bytes","logicalType":"decimal","precision":20,"scale":3}},
		{"name":"decf","type":{"type":"fixed","name":"D","size":3,"logicalType":"decimal","precision":6,"scale":1}},
		{"name":"date","type":{"type":"int","logicalType":"date"}},
		{"name":"tm","type":{"type":"int","logicalType":"time-millis"}},
		{"name":"tu","type":{"type":"long","logicalType":"time-micros"}},
		{"name":"tsm","type":{"type":"long","logicalType":"timestamp-millis"}},
		{"name":"tsu","type":{"type":"long","logicalType":"timestamp-micros"}},
		{"name":"ltsm","type":{"type":"long","logicalType":"local-timestamp-millis"}},
		{"name":"ltsu","type":{"type":"long","logicalType":"local-timestamp-micros"}},
		{"name":"id","type":{"type":"string","logicalType":"uuid"}}]}`
	fake := fakeRegistry(t, map[int]string{1: schema})
	dec := valueDecoderFor(t, fake.URL())
	ts := time.Date(1901, 3, 4, 5, 6, 7, 891011000, time.UTC)
	v := map[string]any{
		"dec": big.NewRat(-1234567, 1000), "decf": big.NewRat(-5, 10),
		"date": time.Date(1960, 1, 2, 0, 0, 0, 0, time.UTC),
		"tm":   3*time.Hour + 4*time.Millisecond, "tu": 23*time.Hour + 59*time.Second + 999999*time.Microsecond,
		"tsm": ts.Truncate(time.Millisecond), "tsu": ts.Truncate(time.Microsecond),
		"ltsm": ts.Truncate(time.Millisecond), "ltsu": ts.Truncate(time.Microsecond),
		"id": "8b6f7b2e-4c1d-4a7e-9f3a-2d1c0b9a8e7f",
	}
	rec := &connector.Record{Value: wire(1, avroBody(t, schema, v))}
	if err := dec.Decode(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	for k, want := range v {
		if !sameValue(rec.Fields[k], want) {
			t.Errorf("%s = %#v, want %#v", k, rec.Fields[k], want)
		}
	}
}

func TestTombstoneAndEmptyKey(t *testing.T) {
	fake := fakeRegistry(t, map[int]string{1: personSchema})
	dec, err := NewDecoder(Options{Key: FormatAvroConfluent, Value: FormatAvroConfluent, SchemaRegistry: RegistryOptions{URL: fake.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	rec := &connector.Record{Fields: map[string]any{"stale": 1}, Schema: &connector.Schema{}, KeyFields: "stale"}
	if err := dec.Decode(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if rec.Fields != nil || rec.Schema != nil || rec.KeyFields != nil {
		t.Errorf("tombstone decoded to Fields=%v Schema=%v KeyFields=%v, want nils", rec.Fields, rec.Schema, rec.KeyFields)
	}
	if n := dec.RegistryLookups(); n != 0 {
		t.Errorf("a tombstone cost %d registry calls", n)
	}
}

// Regression guard for the value slabs (avro_box.go) and the pooled
// readers: values of one record must not change when later records are
// decoded or the garbage collector runs.
func TestDecodedValuesSurviveLaterDecodes(t *testing.T) {
	fake := fakeRegistry(t, map[int]string{1: personSchema})
	dec := valueDecoderFor(t, fake.URL())
	var kept []*connector.Record
	for i := range 2000 {
		v := map[string]any{
			"name": strings.Repeat("n", i%50) + fmt.Sprint(i), "age": int64(i * 1000), "tags": []any{fmt.Sprint("t", i)},
			"attrs": map[string]any{"k": int64(-i * 7)}, "kind": "A", "ok": i%2 == 0, "nick": fmt.Sprint("nick", i),
		}
		rec := &connector.Record{Value: wire(1, avroBody(t, personSchema, v))}
		if err := dec.Decode(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
		kept = append(kept, rec)
		if i%500 == 0 {
			runtime.GC()
		}
	}
	runtime.GC()
	for i, rec := range kept {
		f := rec.Fields
		if f["name"] != strings.Repeat("n", i%50)+fmt.Sprint(i) || f["age"] != int64(i*1000) ||
			f["tags"].([]any)[0] != fmt.Sprint("t", i) || f["attrs"].(map[string]any)["k"] != int64(-i*7) ||
			f["nick"] != fmt.Sprint("nick", i) || f["ok"] != (i%2 == 0) {
			t.Fatalf("record %d changed after later decodes: %v", i, f)
		}
	}
}

func TestUnionOfSameShortNamesPicksTheWrittenBranch(t *testing.T) {
	schema := `{"type":"record","name":"W","fields":[{"name":"u","type":[
		{"type":"record","name":"X","namespace":"a","fields":[{"name":"n","type":"long"}]},
		{"type":"record","name":"X","namespace":"b","fields":[{"name":"s","type":"string"}]}]}]}`
	fake := fakeRegistry(t, map[int]string{1: schema})
	dec := valueDecoderFor(t, fake.URL())
	// Branch 1 (b.X) holding s = "hi".
	rec := &connector.Record{Value: wire(1, cat(long(1), long(2), []byte("hi")))}
	if err := dec.Decode(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if got := rec.Fields["u"].(map[string]any)["s"]; got != "hi" {
		t.Errorf("u = %v, want b.X with s=hi", rec.Fields["u"])
	}
}

// Decimals decode exactly on both paths: 64-bit unscaled values (most
// prices) and wider ones, positive and negative, bytes and fixed.
func TestDecimalsSmallAndLarge(t *testing.T) {
	schema := `{"type":"record","name":"D","fields":[
		{"name":"b","type":{"type":"bytes","logicalType":"decimal","precision":38,"scale":2}},
		{"name":"f","type":{"type":"fixed","name":"F","size":12,"logicalType":"decimal","precision":28,"scale":4}}]}`
	fake := fakeRegistry(t, map[int]string{1: schema})
	dec := valueDecoderFor(t, fake.URL())
	for _, s := range []string{"0", "0.01", "-0.01", "127.5", "-128.25", "92233720368547758.07", "-92233720368547758.08",
		"92233720368547758.08", "-92233720368547758.09", "123456789012345678901234567.89", "-123456789012345678901234567.89"} {
		b, _ := new(big.Rat).SetString(s)
		f := b
		if len(s) > 24 {
			f = big.NewRat(-314159, 100) // too wide for the fixed(12) at scale 4
		}
		v := map[string]any{"b": b, "f": f}
		rec := &connector.Record{Value: wire(1, avroBody(t, schema, v))}
		if err := dec.Decode(context.Background(), rec); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		for k, want := range v {
			if got, ok := rec.Fields[k].(*big.Rat); !ok || got.Cmp(want.(*big.Rat)) != 0 {
				t.Errorf("%s: %s = %v, want %v", s, k, rec.Fields[k], want)
			}
		}
	}
}

// VisitFields hands over exactly what Decode puts in Fields (and Schema),
// and fails with Decode's error, for records, a schema that is not a
// record, evolved schemas and bad bytes.
func TestVisitFieldsMatchesDecode(t *testing.T) {
	v1 := `{"type":"record","name":"P","fields":[{"name":"id","type":"long"},{"name":"name","type":"string"},
		{"name":"tags","type":{"type":"array","items":"string"}},{"name":"addr","type":{"type":"record","name":"A","fields":[{"name":"city","type":"string"}]}}]}`
	v2 := `{"type":"record","name":"P","fields":[{"name":"id","type":"long"},{"name":"name","type":"string"},
		{"name":"tags","type":{"type":"array","items":"string"}},{"name":"addr","type":{"type":"record","name":"A","fields":[{"name":"city","type":"string"}]}},
		{"name":"score","type":["null","double"],"default":null}]}`
	fake := fakeRegistry(t, map[int]string{1: v1, 2: v2, 3: `"string"`})
	dec := valueDecoderFor(t, fake.URL())
	p1 := map[string]any{"id": int64(7), "name": "Ada", "tags": []any{"x", "y"}, "addr": map[string]any{"city": "Paris"}}
	p2 := map[string]any{"id": int64(8), "name": "Bob", "tags": []any{}, "addr": map[string]any{"city": "Rome"}, "score": 1.5}
	good1 := wire(1, avroBody(t, v1, p1))
	values := [][]byte{
		good1,
		wire(2, avroBody(t, v2, p2)),
		wire(3, avroBody(t, `"string"`, "just a string")),
		good1[:len(good1)-2],                  // truncated
		append(append([]byte{}, good1...), 0), // trailing byte
		append([]byte{1}, good1[1:]...),       // wrong magic byte
		{0, 0, 0},                             // short header
	}
	for i, b := range values {
		want := &connector.Record{Value: b, Offset: int64(i)}
		wantErr := dec.Decode(context.Background(), want)
		rec := &connector.Record{Value: b, Offset: int64(i)}
		var got map[string]any
		schema, err := dec.VisitFields(context.Background(), rec, func(k string, v any) {
			if got == nil {
				got = map[string]any{}
			}
			got[k] = v
		})
		if (err == nil) != (wantErr == nil) || err != nil && (err.Error() != wantErr.Error() || reasonOf(err) != reasonOf(wantErr)) {
			t.Fatalf("value %d: VisitFields error %v; Decode says %v", i, err, wantErr)
		}
		if err == nil && (!reflect.DeepEqual(got, want.Fields) || schema != want.Schema) {
			t.Fatalf("value %d: visited %#v (schema %p); Decode gives %#v (schema %p)", i, got, schema, want.Fields, want.Schema)
		}
		if rec.Fields != nil || rec.Schema != nil {
			t.Fatalf("value %d: VisitFields changed the record", i)
		}
	}
}

// Regression: an empty (0-byte, non-null) value passed as a tombstone;
// Confluent's deserializer rejects it, and only null is a tombstone.
func TestEmptyAvroValueIsBadInputNotATombstone(t *testing.T) {
	fake := fakeRegistry(t, map[int]string{1: personSchema})
	dec, err := NewDecoder(Options{Value: FormatAvroConfluent, SchemaRegistry: RegistryOptions{URL: fake.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	rec := &connector.Record{Topic: "t", Offset: 4, Value: []byte{}}
	err = dec.Decode(context.Background(), rec)
	var re *connector.RecordError
	if !errors.As(err, &re) || re.Reason != ReasonEmpty || !strings.Contains(err.Error(), "t/0@4") {
		t.Fatalf("Decode(empty value) = %v; want bad input (reason %q) naming the record", err, ReasonEmpty)
	}
	visited := 0
	_, err = dec.VisitFields(context.Background(), rec, func(string, any) { visited++ })
	if !errors.As(err, &re) || re.Reason != ReasonEmpty || visited != 0 {
		t.Fatalf("VisitFields(empty value) = %v after %d fields; want the same bad input", err, visited)
	}
	if err := dec.Decode(context.Background(), &connector.Record{Value: nil}); err != nil {
		t.Fatalf("Decode(null value) = %v; null is a tombstone", err)
	}
}
