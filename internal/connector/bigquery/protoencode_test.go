package bigquery

import (
	"bytes"
	"context"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	bq "cloud.google.com/go/bigquery"
	"github.com/twmb/franz-go/pkg/sr/srfake"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/sluice-dev/sluice/internal/bqemu"
	"github.com/sluice-dev/sluice/internal/codec"
	"github.com/sluice-dev/sluice/internal/connector"
)

// wideAvro has every shape the direct path must write as the map path
// does: nullable unions, a multi-branch union (JSON), decimals, every
// time type, enums, nested records, arrays of scalars and of records,
// and a map.
const wideAvro = `{"type":"record","name":"Order","namespace":"shop","fields":[
 {"name":"id","type":"long"},
 {"name":"name","type":["null","string"],"default":null},
 {"name":"qty","type":"int"},
 {"name":"amount","type":["null",{"type":"bytes","logicalType":"decimal","precision":12,"scale":2}],"default":null},
 {"name":"big","type":{"type":"bytes","logicalType":"decimal","precision":50,"scale":20}},
 {"name":"at","type":{"type":"long","logicalType":"timestamp-micros"}},
 {"name":"at_ms","type":["null",{"type":"long","logicalType":"timestamp-millis"}],"default":null},
 {"name":"local","type":{"type":"long","logicalType":"local-timestamp-micros"}},
 {"name":"day","type":{"type":"int","logicalType":"date"}},
 {"name":"clock","type":{"type":"long","logicalType":"time-micros"}},
 {"name":"ref","type":{"type":"string","logicalType":"uuid"}},
 {"name":"paid","type":"boolean"},
 {"name":"ratio","type":"double"},
 {"name":"share","type":"float"},
 {"name":"raw","type":"bytes"},
 {"name":"state","type":{"type":"enum","name":"State","symbols":["NEW","PAID"]}},
 {"name":"address","type":["null",{"type":"record","name":"Address","fields":[
   {"name":"street","type":"string"},{"name":"zip","type":["null","int"],"default":null}]}],"default":null},
 {"name":"tags","type":{"type":"array","items":"string"}},
 {"name":"lines","type":{"type":"array","items":{"type":"record","name":"Line","fields":[
   {"name":"sku","type":"string"},{"name":"price","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}}]}}},
 {"name":"attrs","type":{"type":"map","values":"long"}},
 {"name":"choice","type":["null","string","long"],"default":null}
]}`

func wideValues(i int64) map[string]any {
	at := time.Date(2025, 9, 23, 10, 11, 12, 345678000, time.UTC).Add(time.Duration(i) * time.Hour)
	v := map[string]any{
		"id": i, "qty": i * 3, "big": new(big.Rat).SetFrac64(-1, 8), "at": at, "local": at,
		"day": time.Date(1960+int(i), 2, 29, 0, 0, 0, 0, time.UTC), "clock": 23*time.Hour + time.Duration(i)*time.Microsecond,
		"ref": "6a1e6f2c-55d8-4a4f-9f6c-3a5b0e2f0c11", "paid": i%2 == 0, "ratio": -float64(i) / 3, "share": 0.25,
		"raw": []byte{0, byte(i), 255}, "state": "PAID", "tags": []any{}, "lines": []any{}, "attrs": map[string]any{},
	}
	if i%2 == 1 { // the nullable fields set, non-empty collections
		v["name"] = fmt.Sprintf("näme %d", i)
		v["amount"] = big.NewRat(-12345, 100)
		v["at_ms"] = at.Truncate(time.Millisecond)
		v["address"] = map[string]any{"street": "Main", "zip": int64(1000 + i)}
		v["tags"] = []any{"a", "", "c"}
		v["lines"] = []any{map[string]any{"sku": "x", "price": big.NewRat(199, 100)}, map[string]any{"sku": "y", "price": big.NewRat(-1, 100)}}
		v["attrs"] = map[string]any{"b": int64(2), "a": int64(-1)}
		v["choice"] = int64(i)
	}
	if i%3 == 2 {
		v["choice"] = "text"
		v["address"] = map[string]any{"street": "Side"} // zip null
	}
	return v
}

// wideRecords encodes n records with wideAvro through a registry and
// returns them undecoded, with the decoder that reads them.
func wideRecords(t testing.TB, n int) ([]*connector.Record, *codec.RecordDecoder) {
	t.Helper()
	reg := srfake.New()
	t.Cleanup(reg.Close)
	opts := codec.Options{Value: codec.FormatAvroConfluent, SchemaRegistry: codec.RegistryOptions{URL: reg.URL()}}
	enc, err := codec.NewEncoder(opts, wideAvro)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := codec.NewDecoder(opts)
	if err != nil {
		t.Fatal(err)
	}
	recs := make([]*connector.Record, n)
	for i := range recs {
		b, err := enc.Encode(context.Background(), "orders", &connector.Record{Fields: wideValues(int64(i))})
		if err != nil {
			t.Fatal(err)
		}
		recs[i] = &connector.Record{Topic: "orders", Partition: 1, Offset: int64(i), Key: []byte(fmt.Sprint(i)),
			Timestamp: time.UnixMilli(1700000000000 + int64(i)).UTC(), Value: b}
	}
	return recs, dec
}

func decoded(t testing.TB, dec *codec.RecordDecoder, recs []*connector.Record) []*connector.Record {
	t.Helper()
	out := make([]*connector.Record, len(recs))
	for i, r := range recs {
		c := *r
		if err := dec.Decode(context.Background(), &c); err != nil {
			t.Fatal(err)
		}
		out[i] = &c
	}
	return out
}

// TestDirectEncodingMatchesTheMapPath encodes the same Avro records both
// ways, straight from the bytes and through the decoded map, and finds
// the same proto rows; then writes them through two sinks and reads the
// same table rows back.
func TestDirectEncodingMatchesTheMapPath(t *testing.T) {
	recs, dec := wideRecords(t, 6)
	maps := decoded(t, dec, recs)
	meta := []string{"topic", "partition", "offset", "timestamp", "key"}
	plan, schema, direct := directPlan(t, dec, maps[0], meta)
	for i, r := range recs {
		viaMap, err := plan.encode(maps[i], meta)
		if err != nil {
			t.Fatal(err)
		}
		c := *r
		if err := direct.learnSchema(context.Background(), &c); err != nil {
			t.Fatal(err)
		}
		viaBytes, err := direct.encodeVisited(context.Background(), plan, &c)
		if err != nil {
			t.Fatal(err)
		}
		a, b := dynamicpb.NewMessage(plan.md), dynamicpb.NewMessage(plan.md)
		if err := proto.Unmarshal(viaMap, a); err != nil {
			t.Fatal(err)
		}
		if err := proto.Unmarshal(viaBytes, b); err != nil {
			t.Fatalf("record %d: the direct row does not parse: %v", i, err)
		}
		if !proto.Equal(a, b) {
			t.Fatalf("record %d:\n map path %v\n direct   %v", i, a, b)
		}
		if n := countSet(b); i%2 == 1 && n != len(schema) {
			t.Fatalf("record %d: %d of %d fields set in the direct row", i, n, len(schema))
		}
	}

	e, addrs := startEmulator(t, bqemu.Faults{})
	cfgMap, cfgDirect := sinkConfig(addrs, "via_map"), sinkConfig(addrs, "via_bytes")
	cfgMap.Metadata, cfgDirect.Metadata = meta, meta
	viaMap := newSink(t, cfgMap)
	s, err := New(context.Background(), Options{Config: cfgDirect, Pipeline: t.Name(), Logger: testLogger(), Fields: dec})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	if !s.VisitsFields() {
		t.Fatal("the sink does not take Avro values undecoded")
	}
	if bad := write(t, viaMap, maps); len(bad) > 0 {
		t.Fatal(bad[0])
	}
	if bad := write(t, s, recs); len(bad) > 0 {
		t.Fatal(bad[0])
	}
	if a, b := tableSchema(t, addrs, "via_map"), tableSchema(t, addrs, "via_bytes"); schemaString(a) != schemaString(b) {
		t.Fatalf("table schemas differ:\n map path %s\n direct   %s", schemaString(a), schemaString(b))
	}
	rowsA, rowsB := sortedRows(t, e, "via_map"), sortedRows(t, e, "via_bytes")
	if len(rowsA) != len(recs) || fmt.Sprint(rowsA) != fmt.Sprint(rowsB) {
		t.Fatalf("rows differ:\n map path %v\n direct   %v", rowsA, rowsB)
	}
}

// directPlan is the row plan of first's columns plus meta, and a sink
// that encodes through dec's direct path with those metadata columns.
func directPlan(t *testing.T, dec *codec.RecordDecoder, first *connector.Record, meta []string) (*rowPlan, bq.Schema, *Sink) {
	t.Helper()
	schema := columnsFromSchema(first.Schema)
	for _, m := range meta {
		schema = append(schema, metadataColumns[m])
	}
	plan, _, err := tableDescriptor(schema)
	if err != nil {
		t.Fatal(err)
	}
	s := &Sink{visitor: directVisitor(dec, "t"), cfg: sinkConfig(bqemu.Addrs{}, "t")}
	s.cfg.Metadata = meta
	return plan, schema, s
}

func countSet(m *dynamicpb.Message) int {
	n := 0
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		if m.Has(fields.Get(i)) {
			n++
		}
	}
	return n
}

func sortedRows(t *testing.T, e *bqemu.Emulator, table string) []string {
	t.Helper()
	var out []string
	for _, r := range rows(t, e, table) {
		out = append(out, fmt.Sprint(r))
	}
	slices.Sort(out)
	return out
}

// TestDirectPathRefusesBadBytesAsBadInput: a value that is not Confluent
// wire format is one bad record with the decoder's reason; the others land.
func TestDirectPathRefusesBadBytesAsBadInput(t *testing.T) {
	recs, dec := wideRecords(t, 3)
	e, addrs := startEmulator(t, bqemu.Faults{})
	s, err := New(context.Background(), Options{Config: sinkConfig(addrs, "{{.Schema.Name}}"), Pipeline: t.Name(), Logger: testLogger(), Fields: dec})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	truncated := *recs[2]
	truncated.Value = truncated.Value[:len(truncated.Value)-3]
	recs[1].Value = []byte(`{"id":1}`)
	bad := write(t, s, []*connector.Record{recs[0], recs[1], &truncated})
	if len(bad) != 2 || bad[0].Reason != codec.ReasonWireFormat || bad[1].Reason != codec.ReasonAvroDecode {
		t.Fatalf("refused = %v, want record 1 for its wire format and record 2 for its truncated bytes", bad)
	}
	if ids := countIDs(t, e, "shop_Order"); len(ids) != 1 || ids[0] != 1 {
		t.Fatalf("ids = %v, want record 0 alone", ids)
	}
}

func TestSmallDecimalsEncodeAsTheBigPathDoes(t *testing.T) {
	nums := []int64{0, 1, -1, 127, 128, -128, -129, 255, 256, 32767, -32768, 1 << 40, -(1 << 40), 9223372036, -9223372036854775807}
	for _, num := range nums {
		for _, den := range []int64{1, 2, 4, 5, 8, 10, 100, 3, 1000000000} {
			for _, scale := range []int{0, 2, 9} {
				r := big.NewRat(num, den)
				got, ok := decimalBytesSmall(r, scale)
				if !ok {
					continue
				}
				if want := decimalBytesBig(r, scale); !slices.Equal(got, want) {
					t.Fatalf("%s at scale %d: %x, want %x", r, scale, got, want)
				}
			}
		}
	}
	if _, ok := decimalBytesSmall(big.NewRat(1, 3), 9); ok {
		t.Fatal("1/3 took the small path")
	}
}

// TestRowArenaRowsStayIntact: rows sharing an arena, some outgrowing their
// chunk, are what encoding alone gives, and stay so as later rows come.
func TestRowArenaRowsStayIntact(t *testing.T) {
	recs, dec := wideRecords(t, 6)
	maps := decoded(t, dec, recs)
	plan, _, s := directPlan(t, dec, maps[0], []string{"topic", "partition", "offset"})
	var (
		a         rowArena
		got, want [][]byte
	)
	for i, r := range recs {
		r.Topic = strings.Repeat("t", 50*i) // later rows outgrow the room left
		if err := s.learnSchema(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		alone, err := s.encodeVisited(context.Background(), plan, r)
		if err != nil {
			t.Fatal(err)
		}
		row, err := a.encodeVisited(context.Background(), s, plan, r, 2)
		if err != nil {
			t.Fatal(err)
		}
		a1, a2 := dynamicpb.NewMessage(plan.md), dynamicpb.NewMessage(plan.md)
		if err := proto.Unmarshal(row, a1); err != nil {
			t.Fatalf("row %d from the arena does not parse: %v", i, err)
		}
		if err := proto.Unmarshal(alone, a2); err != nil || !proto.Equal(a1, a2) {
			t.Fatalf("row %d: %v from the arena, %v alone", i, a1, a2)
		}
		got, want = append(got, row), append(want, bytes.Clone(row))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("row %d changed after later rows were encoded", i)
		}
	}
}
