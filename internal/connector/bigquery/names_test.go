package bigquery

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	bq "cloud.google.com/go/bigquery"
)

func TestTableNameSanitising(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		bad      bool
	}{
		{in: "kafka-orders", want: "kafka-orders"},
		{in: "kafka-orders.v1", want: "kafka-orders_v1"},
		{in: "page view/v2", want: "page_view_v2"},
		{in: "événements_2025", want: "événements_2025"},
		{in: "a\x00b", want: "a_b"},
		{in: "_", want: "_"},
		{in: "", bad: true},
		{in: "...", bad: true},
		{in: strings.Repeat("t", 1025), bad: true},
		{in: strings.Repeat("t", 1024), want: strings.Repeat("t", 1024)},
	} {
		got, err := tableName(tc.in)
		if tc.bad {
			if !errors.Is(err, errTableName) {
				t.Errorf("tableName(%q) = %q, %v; want an error", clip(tc.in, 20), got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("tableName(%q) = %q, %v; want %q", clip(tc.in, 20), got, err, tc.want)
		}
	}
}

func TestColumnNameSanitising(t *testing.T) {
	for in, want := range map[string]string{
		"customer_id":  "customer_id",
		"user-id":      "user_id",
		"2fa":          "_2fa",
		"a.b c":        "a_b_c",
		"_PARTITIONED": "__PARTITIONED",
		"_table_x":     "__table_x",
		"":             "_",
		"é":            "__",
	} {
		if got := columnName(in); got != want {
			t.Errorf("columnName(%q) = %q, want %q", in, got, want)
		}
	}
	if got := columnName(strings.Repeat("x", 400)); len(got) != maxColumnNameLen {
		t.Errorf("a 400-character name became %d characters, want %d", len(got), maxColumnNameLen)
	}
}

func TestJSONInference(t *testing.T) {
	var v map[string]any
	d := json.NewDecoder(strings.NewReader(`{"i":3,"f":3.5,"e":1e3,"s":"x","b":false,"n":null,"o":{"k":1},"eo":{},"a":[1,2],"ea":[],
		"ao":[{"x":1},{"y":"z"}],"aa":[[1]]}`))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range inferColumns(v) {
		got[c.Name] = shape(c)
		if c.Name == "ao" && schemaString(c.Schema) != "x INTEGER, y STRING" {
			t.Errorf("array of objects has fields %s, want the union x, y", schemaString(c.Schema))
		}
	}
	want := map[string]string{"i": "INTEGER", "f": "FLOAT", "e": "FLOAT", "s": "STRING", "b": "BOOLEAN",
		"o": "RECORD", "a": "REPEATED INTEGER", "ao": "REPEATED RECORD", "aa": "JSON"}
	if len(got) != len(want) {
		t.Errorf("inferred %v, want %v (null and empty values add nothing)", got, want)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("column %s inferred as %q, want %q", k, got[k], w)
		}
	}
}

func TestMergeSchemaAddsNullableColumnsAndReportsConflicts(t *testing.T) {
	table := bq.Schema{
		{Name: "id", Type: bq.IntegerFieldType, Required: true},
		{Name: "addr", Type: bq.RecordFieldType, Schema: bq.Schema{{Name: "city", Type: bq.StringFieldType}}},
		{Name: "price", Type: bq.FloatFieldType},
	}
	want := bq.Schema{
		{Name: "ID", Type: bq.IntegerFieldType},
		{Name: "addr", Type: bq.RecordFieldType, Schema: bq.Schema{{Name: "zip", Type: bq.StringFieldType, Required: true}}},
		{Name: "price", Type: bq.IntegerFieldType}, // an int fits a FLOAT column
		{Name: "note", Type: bq.StringFieldType, Required: true},
	}
	out, changed, conflicts := mergeSchema(table, want, "")
	if !changed || len(conflicts) != 0 {
		t.Fatalf("changed %v, conflicts %v", changed, conflicts)
	}
	if schemaString(out) != "id INTEGER, addr RECORD, price FLOAT, note STRING" || out[3].Required {
		t.Fatalf("merged = %s (note required %v)", schemaString(out), out[3].Required)
	}
	if schemaString(out[1].Schema) != "city STRING, zip STRING" || out[1].Schema[1].Required {
		t.Fatalf("merged addr = %s", schemaString(out[1].Schema))
	}
	if schemaString(table[1].Schema) != "city STRING" {
		t.Fatalf("the input schema was modified: addr = %s", schemaString(table[1].Schema))
	}
	_, _, conflicts = mergeSchema(table, bq.Schema{{Name: "id", Type: bq.StringFieldType}, {Name: "addr", Type: bq.StringFieldType, Repeated: true}}, "")
	if len(conflicts) != 2 || !strings.Contains(conflicts[0], "field id: the record has STRING, the column is INTEGER") {
		t.Fatalf("conflicts = %v", conflicts)
	}
}
