package bigquery

import (
	"context"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	bq "cloud.google.com/go/bigquery"
	"cloud.google.com/go/civil"
	bqapi "google.golang.org/api/bigquery/v2"

	"github.com/sluice-dev/sluice/internal/bqemu"
	"github.com/sluice-dev/sluice/internal/connector"
)

// tableSchema reads a table's schema through the REST API, as a user would.
func tableSchema(t *testing.T, addrs bqemu.Addrs, table string) bq.Schema {
	t.Helper()
	return tableMetadata(t, addrs, table).Schema
}

func column(t *testing.T, s bq.Schema, name string) *bq.FieldSchema {
	t.Helper()
	i := findColumn(s, name)
	if i < 0 {
		t.Fatalf("no column %s in %s", name, schemaString(s))
	}
	return s[i]
}

func TestJSONRecordsCreateTablesFromTheirValuesAndLand(t *testing.T) {
	e, addrs := startEmulator(t, bqemu.Faults{})
	cfg := sinkConfig(addrs, "kafka-{{.Topic}}")
	cfg.Metadata = []string{"topic", "partition", "offset", "timestamp", "key"}
	s := newSink(t, cfg)
	var batch []*connector.Record
	for i := range 30 {
		topic := []string{"orders.v1", "users", "clicks"}[i%3]
		batch = append(batch, jsonRecord(t, topic, int64(i), fmt.Sprintf(
			`{"id":%d,"price":%d.25,"name":"n%d","ok":true,"tags":["a","b"],"addr":{"city":"Lyon","zip":69000},"user-id":"u%d","gone":null}`, i, i, i, i)))
	}
	if bad := write(t, s, batch); len(bad) > 0 {
		t.Fatalf("refused: %v", bad[0])
	}
	for _, table := range []string{"kafka-orders_v1", "kafka-users", "kafka-clicks"} {
		ids := countIDs(t, e, table)
		if len(ids) != 10 {
			t.Fatalf("table %s holds %d distinct ids, want 10", table, len(ids))
		}
		for id, n := range ids {
			if n != 1 {
				t.Fatalf("table %s: id %d present %d times", table, id, n)
			}
		}
	}
	schema := tableSchema(t, addrs, "kafka-orders_v1")
	for name, want := range map[string]string{
		"id": "INTEGER", "price": "FLOAT", "name": "STRING", "ok": "BOOLEAN", "tags": "REPEATED STRING",
		"addr": "RECORD", "user_id": "STRING", "_sluice_topic": "STRING", "_sluice_partition": "INTEGER",
		"_sluice_offset": "INTEGER", "_sluice_timestamp": "TIMESTAMP", "_sluice_key": "STRING",
	} {
		if got := shape(column(t, schema, name)); got != want {
			t.Errorf("column %s is %s, want %s", name, got, want)
		}
		if column(t, schema, name).Required {
			t.Errorf("column %s is REQUIRED; created columns must be NULLABLE", name)
		}
	}
	if findColumn(schema, "gone") >= 0 {
		t.Errorf("a field only ever null made a column of a guessed type")
	}
	r := rows(t, e, "kafka-orders_v1")[0]
	if r["id"] != int64(0) || r["price"] != 0.25 || r["user_id"] != "u0" || r["_sluice_topic"] != "orders.v1" ||
		r["_sluice_offset"] != int64(0) || r["_sluice_key"] != "k0" ||
		!r["_sluice_timestamp"].(time.Time).Equal(time.UnixMilli(1700000000000)) {
		t.Fatalf("first row = %v", r)
	}
	if addr := r["addr"].(map[string]any); addr["city"] != "Lyon" || addr["zip"] != int64(69000) {
		t.Fatalf("addr = %v", addr)
	}
}

// purchaseSchema is an Avro-like portable schema with every type the
// codec produces.
func purchaseSchema(id int, extra ...connector.Field) *connector.Schema {
	s := &connector.Schema{ID: id, Name: "com.example.PurchaseRequestEvent", Fields: []connector.Field{
		{Name: "id", Type: connector.TypeInt},
		{Name: "customer", Type: connector.TypeString},
		{Name: "amount", Type: connector.TypeDecimal, Precision: 12, Scale: 2},
		{Name: "big", Type: connector.TypeDecimal, Precision: 50, Scale: 20},
		{Name: "day", Type: connector.TypeDate},
		{Name: "at", Type: connector.TypeTimestamp},
		{Name: "local", Type: connector.TypeLocalTimestamp},
		{Name: "clock", Type: connector.TypeTime},
		{Name: "ref", Type: connector.TypeUUID},
		{Name: "raw", Type: connector.TypeBytes, Nullable: true},
		{Name: "ratio", Type: connector.TypeFloat},
		{Name: "paid", Type: connector.TypeBool},
		{Name: "lines", Type: connector.TypeArray, Items: &connector.Field{Type: connector.TypeRecord, Fields: []connector.Field{
			{Name: "sku", Type: connector.TypeString}, {Name: "qty", Type: connector.TypeInt}}}},
		{Name: "attrs", Type: connector.TypeMap, Items: &connector.Field{Type: connector.TypeString}},
		{Name: "grid", Type: connector.TypeArray, Items: &connector.Field{Type: connector.TypeArray, Items: &connector.Field{Type: connector.TypeInt}}},
		{Name: "any", Type: connector.TypeJSON},
	}}
	s.Fields = append(s.Fields, extra...)
	return s
}

func purchase(schema *connector.Schema, id int64, extra map[string]any) *connector.Record {
	at := time.Date(2025, 9, 23, 10, 11, 12, 345678000, time.UTC)
	f := map[string]any{
		"id": id, "customer": fmt.Sprintf("c%d", id), "amount": big.NewRat(-12345, 100),
		"big": new(big.Rat).SetFrac(big.NewInt(1), big.NewInt(8)), // 0.125
		"day": time.Date(2025, 9, 23, 0, 0, 0, 0, time.UTC), "at": at, "local": at,
		"clock": 10*time.Hour + 11*time.Minute + 12*time.Second + 345678*time.Microsecond,
		"ref":   "6a1e6f2c-55d8-4a4f-9f6c-3a5b0e2f0c11", "raw": []byte{0, 1, 2}, "ratio": 0.5, "paid": true,
		"lines": []any{map[string]any{"sku": "a", "qty": int64(2)}, map[string]any{"sku": "b", "qty": int64(1)}},
		"attrs": map[string]any{"b": "2", "a": "1"},
		"grid":  []any{[]any{int64(1), int64(2)}, []any{}},
		"any":   map[string]any{"k": []any{int64(1), "x"}},
	}
	for k, v := range extra {
		f[k] = v
	}
	return &connector.Record{Topic: "purchases", Offset: id, Fields: f, Schema: schema}
}

func TestAvroSchemaMapsToBigQueryTypes(t *testing.T) {
	e, addrs := startEmulator(t, bqemu.Faults{})
	s := newSink(t, sinkConfig(addrs, "{{.Schema.Name}}"))
	v1 := purchaseSchema(1)
	if bad := write(t, s, []*connector.Record{purchase(v1, 1, nil), purchase(v1, 2, nil)}); len(bad) > 0 {
		t.Fatalf("refused: %v", bad[0])
	}
	table := "com_example_PurchaseRequestEvent"
	schema := tableSchema(t, addrs, table)
	for name, want := range map[string]string{
		"id": "INTEGER", "customer": "STRING", "amount": "NUMERIC", "big": "BIGNUMERIC", "day": "DATE",
		"at": "TIMESTAMP", "local": "DATETIME", "clock": "TIME", "ref": "STRING", "raw": "BYTES",
		"ratio": "FLOAT", "paid": "BOOLEAN", "lines": "REPEATED RECORD", "attrs": "REPEATED RECORD",
		"grid": "JSON", "any": "JSON",
	} {
		if got := shape(column(t, schema, name)); got != want {
			t.Errorf("column %s is %s, want %s", name, got, want)
		}
	}
	got := rows(t, e, table)
	if len(got) != 2 {
		t.Fatalf("%d rows, want 2", len(got))
	}
	r := got[0]
	at := time.Date(2025, 9, 23, 10, 11, 12, 345678000, time.UTC)
	checks := []struct {
		col  string
		ok   bool
		want any
	}{
		{"amount", r["amount"].(*big.Rat).Cmp(big.NewRat(-12345, 100)) == 0, "-123.45"},
		{"big", r["big"].(*big.Rat).Cmp(big.NewRat(1, 8)) == 0, "0.125"},
		{"day", r["day"] == civil.Date{Year: 2025, Month: 9, Day: 23}, "2025-09-23"},
		{"at", r["at"].(time.Time).Equal(at), at},
		{"local", r["local"] == civil.DateTimeOf(at), civil.DateTimeOf(at)},
		{"clock", r["clock"] == civil.TimeOf(at), civil.TimeOf(at)},
		{"raw", string(r["raw"].([]byte)) == "\x00\x01\x02", "0 1 2"},
		{"grid", r["grid"] == `[[1,2],[]]`, `[[1,2],[]]`},
		{"any", r["any"] == `{"k":[1,"x"]}`, `{"k":[1,"x"]}`},
		{"attrs", fmt.Sprint(r["attrs"]) == "[map[key:a value:1] map[key:b value:2]]", "a=1, b=2 in key order"},
		{"lines", fmt.Sprint(r["lines"]) == "[map[qty:2 sku:a] map[qty:1 sku:b]]", "two lines"},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("column %s = %v, want %v", c.col, r[c.col], c.want)
		}
	}
}

func TestNewAvroFieldAddsNullableColumnAndBothVersionsLand(t *testing.T) {
	e, addrs := startEmulator(t, bqemu.Faults{})
	s := newSink(t, sinkConfig(addrs, "purchases"))
	v1 := purchaseSchema(1)
	v2 := purchaseSchema(2, connector.Field{Name: "coupon", Type: connector.TypeString, Nullable: true})
	if bad := write(t, s, []*connector.Record{purchase(v1, 1, nil)}); len(bad) > 0 {
		t.Fatal(bad[0])
	}
	// Old and new writers interleave in one batch, as they do during a rollout.
	batch := []*connector.Record{purchase(v2, 2, map[string]any{"coupon": "SAVE10"}), purchase(v1, 3, nil), purchase(v2, 4, map[string]any{"coupon": nil})}
	if bad := write(t, s, batch); len(bad) > 0 {
		t.Fatal(bad[0])
	}
	c := column(t, tableSchema(t, addrs, "purchases"), "coupon")
	if c.Type != bq.StringFieldType || c.Required || c.Repeated {
		t.Fatalf("coupon column = %s (required %v), want NULLABLE STRING", shape(c), c.Required)
	}
	coupons := map[int64]any{}
	for _, r := range rows(t, e, "purchases") {
		coupons[r["id"].(int64)] = r["coupon"]
	}
	want := map[int64]any{1: nil, 2: "SAVE10", 3: nil, 4: nil}
	if fmt.Sprint(coupons) != fmt.Sprint(want) {
		t.Fatalf("coupons by id = %v, want %v", coupons, want)
	}
}

func TestIncompatibleSchemaChangeGoesToOnErrorWithReason(t *testing.T) {
	e, addrs := startEmulator(t, bqemu.Faults{})
	s := newSink(t, sinkConfig(addrs, "purchases"))
	v1 := purchaseSchema(1)
	retyped := purchaseSchema(3)
	retyped.Fields[1] = connector.Field{Name: "customer", Type: connector.TypeRecord, Fields: []connector.Field{{Name: "name", Type: connector.TypeString}}}
	if bad := write(t, s, []*connector.Record{purchase(v1, 1, nil)}); len(bad) > 0 {
		t.Fatal(bad[0])
	}
	bad := write(t, s, []*connector.Record{purchase(retyped, 2, map[string]any{"customer": map[string]any{"name": "x"}}), purchase(v1, 3, nil)})
	if len(bad) != 1 || bad[0].Record.Offset != 2 || bad[0].Reason != "schema" ||
		!strings.Contains(bad[0].Error(), "field customer: the record has RECORD, the column is STRING") {
		t.Fatalf("refused = %v, want record 2 alone for its retyped customer field", bad)
	}
	if ids := countIDs(t, e, "purchases"); len(ids) != 2 || ids[1] != 1 || ids[3] != 1 {
		t.Fatalf("ids = %v, want 1 and 3 once each", ids)
	}
}

func TestRowErrorsRejectOnlyTheBadRows(t *testing.T) {
	e, addrs := startEmulator(t, bqemu.Faults{})
	ctx := context.Background()
	if err := e.CreateDataset(ctx, testProject, testDataset); err != nil {
		t.Fatal(err)
	}
	// A table the user made: a REQUIRED column and a NUMERIC one, whose
	// range BigQuery checks per row.
	if err := e.CreateTable(ctx, testProject, testDataset, "payments", []*bqapi.TableFieldSchema{
		{Name: "id", Type: "INT64", Mode: "REQUIRED"},
		{Name: "amount", Type: "NUMERIC"},
	}); err != nil {
		t.Fatal(err)
	}
	cfg := sinkConfig(addrs, "payments")
	cfg.CreateTables = false
	s := newSink(t, cfg)
	var batch []*connector.Record
	for i := range 10 {
		v := fmt.Sprintf(`{"id":%d,"amount":%d.5}`, i, i)
		switch i {
		case 3, 7:
			v = fmt.Sprintf(`{"id":%d,"amount":1e40}`, i) // beyond NUMERIC's 29 integer digits
		case 5:
			v = `{"amount":1}` // REQUIRED id missing
		}
		batch = append(batch, jsonRecord(t, "pay", int64(i), v))
	}
	bad := write(t, s, batch)
	got := map[int64]string{}
	for _, re := range bad {
		got[re.Record.Offset] = re.Reason
		if !strings.Contains(re.Error(), "BigQuery refused the row for table payments") {
			t.Errorf("offset %d: reason %q does not carry BigQuery's row error", re.Record.Offset, re.Error())
		}
	}
	if fmt.Sprint(got) != "map[3:row 5:row 7:row]" {
		t.Fatalf("refused offsets = %v, want 3, 5 and 7 as row errors", got)
	}
	ids := countIDs(t, e, "payments")
	for _, id := range []int64{0, 1, 2, 4, 6, 8, 9} {
		if ids[id] != 1 {
			t.Fatalf("good row %d present %d times, want once: %v", id, ids[id], ids)
		}
	}
	if st := s.Stats(); st.RowErrors != 3 || st.RowsAppended != 7 {
		t.Fatalf("stats %+v, want 3 row errors and 7 rows appended", st)
	}
}

func TestValuesThatFitNoColumnAreBadInput(t *testing.T) {
	e, addrs := startEmulator(t, bqemu.Faults{})
	s := newSink(t, sinkConfig(addrs, "t"))
	if bad := write(t, s, []*connector.Record{jsonRecord(t, "x", 0, `{"id":1,"n":2}`)}); len(bad) > 0 {
		t.Fatal(bad[0])
	}
	bad := write(t, s, []*connector.Record{
		jsonRecord(t, "x", 1, `{"id":2,"n":"two"}`),
		jsonRecord(t, "x", 2, `{"id":3,"n":2.5}`),
		jsonRecord(t, "x", 3, `{"id":4,"n":4}`),
	})
	if len(bad) != 2 || bad[0].Reason != "type" || !strings.Contains(bad[0].Error(), `field n: the string "two" does not fit a INTEGER column`) {
		t.Fatalf("refused = %v", bad)
	}
	if ids := countIDs(t, e, "t"); len(ids) != 2 || ids[4] != 1 {
		t.Fatalf("ids = %v, want 1 and 4", ids)
	}
}

func TestTableNamesFromTemplates(t *testing.T) {
	e, addrs := startEmulator(t, bqemu.Faults{})
	s := newSink(t, sinkConfig(addrs, "ev-{{.Value.kind}}"))
	long := strings.Repeat("x", 1100)
	bad := write(t, s, []*connector.Record{
		jsonRecord(t, "x", 0, `{"id":0,"kind":"page view/v2"}`),
		jsonRecord(t, "x", 1, `{"id":1,"kind":"`+long+`"}`),
		jsonRecord(t, "x", 2, `{"id":2}`),
		{Topic: "x", Offset: 3},
	})
	reasons := map[int64]string{}
	for _, re := range bad {
		reasons[re.Record.Offset] = re.Reason
	}
	if fmt.Sprint(reasons) != "map[1:table 2:template 3:empty]" {
		t.Fatalf("refused = %v (%v)", reasons, bad)
	}
	if ids := countIDs(t, e, "ev-page_view_v2"); ids[0] != 1 {
		t.Fatalf("ev-page_view_v2 ids = %v", ids)
	}
}

func TestMissingTableWithoutCreateTables(t *testing.T) {
	_, addrs := startEmulator(t, bqemu.Faults{})
	t.Run("constant name stops the pipeline", func(t *testing.T) {
		cfg := sinkConfig(addrs, "nope")
		cfg.CreateTables = false
		s := newSink(t, cfg)
		err := s.Write(context.Background(), []*connector.Record{jsonRecord(t, "x", 0, `{"id":1}`)})
		if !connector.IsPermanent(err) || !strings.Contains(err.Error(), "table p.d.nope does not exist and create_tables is false") {
			t.Fatalf("Write = %v, want a permanent error naming the table", err)
		}
	})
	t.Run("dynamic name sends the records to on_error", func(t *testing.T) {
		cfg := sinkConfig(addrs, "{{.Topic}}")
		cfg.CreateTables = false
		s := newSink(t, cfg)
		bad := write(t, s, []*connector.Record{jsonRecord(t, "nope", 0, `{"id":1}`)})
		if len(bad) != 1 || bad[0].Reason != "table" {
			t.Fatalf("refused = %v", bad)
		}
	})
}

func TestMetadataColumnsAreAddedToAnExistingTable(t *testing.T) {
	e, addrs := startEmulator(t, bqemu.Faults{})
	ctx := context.Background()
	if err := e.CreateDataset(ctx, testProject, testDataset); err != nil {
		t.Fatal(err)
	}
	if err := e.CreateTable(ctx, testProject, testDataset, "mine", []*bqapi.TableFieldSchema{{Name: "id", Type: "INT64"}}); err != nil {
		t.Fatal(err)
	}
	cfg := sinkConfig(addrs, "mine")
	cfg.CreateTables, cfg.Metadata = false, []string{"offset", "partition"}
	s := newSink(t, cfg)
	if bad := write(t, s, []*connector.Record{jsonRecord(t, "x", 41, `{"id":1}`)}); len(bad) > 0 {
		t.Fatal(bad[0])
	}
	if got := schemaString(tableSchema(t, addrs, "mine")); got != "id INTEGER, _sluice_offset INTEGER, _sluice_partition INTEGER" {
		t.Fatalf("schema = %s", got)
	}
	if r := rows(t, e, "mine")[0]; r["_sluice_offset"] != int64(41) || r["_sluice_partition"] != int64(0) {
		t.Fatalf("row = %v", r)
	}
}
