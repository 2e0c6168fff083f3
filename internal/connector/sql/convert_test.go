package sql

import (
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"
)

func TestSQLConvertToColumnTypes(t *testing.T) {
	int16Col := &column{name: "n", dbType: "smallint", kind: kindInt, bits: 16}
	u8 := &column{name: "n", dbType: "tinyint unsigned", kind: kindInt, bits: 8, unsigned: true}
	dec := &column{name: "p", dbType: "numeric(6,2)", kind: kindDecimal, precision: 6, scale: 2}
	vc := &column{name: "s", dbType: "varchar(3)", kind: kindText, length: 3}
	ts := &column{kind: kindTimestampTZ}
	tests := []struct {
		name    string
		col     *column
		in      any
		want    any
		wantErr string
	}{
		{"json integer", int16Col, json.Number("32767"), int64(32767), ""},
		{"json integer out of range", int16Col, json.Number("32768"), nil, "out of range for smallint"},
		{"exponent integer", int16Col, json.Number("1e3"), int64(1000), ""},
		{"fraction into integer", int16Col, json.Number("1.5"), nil, "not a whole number"},
		{"string integer", int16Col, " 42 ", int64(42), ""},
		{"text into integer", int16Col, "abc", nil, "\"abc\" is not an integer"},
		{"bool into integer", int16Col, true, int64(1), ""},
		{"negative unsigned", u8, json.Number("-1"), nil, "out of range"},
		{"decimal", dec, json.Number("1234.567"), "1234.567", ""},
		{"decimal overflow", dec, json.Number("12345.5"), nil, "at most 4 digits before the point"},
		{"decimal with exponent", dec, json.Number("1.5e2"), "150", ""},
		{"leading zeros are not digits", dec, "-0007.25", "-0007.25", ""},
		{"decimal from rat", dec, big.NewRat(1, 4), "0.25", ""},
		{"decimal from text", dec, "abc", nil, "not a decimal number"},
		{"decimal rejects fractions", dec, "1/3", nil, "not a decimal number"},
		{"varchar fits in characters", vc, "äöü", "äöü", ""},
		{"varchar too long", vc, "abcd", nil, "4 characters does not fit varchar(3)"},
		{"object into text is JSON", &column{kind: kindText}, map[string]any{"a": json.Number("1")}, `{"a":1}`, ""},
		{"RFC 3339", ts, "2024-05-01T12:00:00+02:00", time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC), ""},
		{"SQL spelling", ts, "2024-05-01 12:00:00.5", time.Date(2024, 5, 1, 12, 0, 0, 5e8, time.UTC), ""},
		{"epoch milliseconds", ts, json.Number("1700000000000"), time.UnixMilli(1700000000000).UTC(), ""},
		{"bad timestamp", ts, "yesterday", nil, "not a timestamp"},
		{"date", &column{kind: kindDate}, "2024-05-01", time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), ""},
		{"time of day", &column{kind: kindTime}, "13:14:15.5", 13*time.Hour + 14*time.Minute + 15500*time.Millisecond, ""},
		{"uuid", &column{kind: kindUUID}, "{6BA7B810-9DAD-11D1-80B4-00C04FD430C8}", "6ba7b810-9dad-11d1-80b4-00c04fd430c8", ""},
		{"bad uuid", &column{kind: kindUUID}, "6ba7b810", nil, "not a UUID"},
		{"bool from text", &column{kind: kindBool}, "yes", true, ""},
		{"bool from 2", &column{kind: kindBool}, json.Number("2"), nil, "not a boolean"},
		{"json keeps strings as JSON strings", &column{kind: kindJSON}, "a\"b", `"a\"b"`, ""},
		{"json of a rat is a number", &column{kind: kindJSON}, map[string]any{"x": big.NewRat(3, 2)}, `{"x":1.5}`, ""},
		{"any keeps integers", &column{kind: kindAny}, json.Number("7"), int64(7), ""},
		{"null stays null", int16Col, nil, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := convert(tt.col, tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("convert(%#v) error = %v, want one containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if gt, ok := got.(time.Time); ok {
				if !gt.Equal(tt.want.(time.Time)) {
					t.Fatalf("got %v, want %v", gt, tt.want)
				}
				return
			}
			if got != tt.want {
				t.Fatalf("convert(%#v) = %#v, want %#v", tt.in, got, tt.want)
			}
		})
	}
}

func TestSQLIdentifiersFromDataAreChecked(t *testing.T) {
	for _, bad := range []string{"", `a"b`, "a`b", "x\x00", strings.Repeat("a", 64)} {
		if checkName(bad) == nil {
			t.Errorf("checkName(%q) accepted", bad)
		}
	}
	if _, err := parseTableName("a.b.c"); err == nil {
		t.Error("a.b.c accepted as a table name")
	}
	tn, err := parseTableName("stage.Films Staging")
	if err != nil || ansiQuote.table(tn) != `"stage"."Films Staging"` || backtickQuote.table(tn) != "`stage`.`Films Staging`" {
		t.Fatalf("quoting %v: %v", tn, err)
	}
	for _, field := range []string{`x" text); DROP TABLE films; --`, "1abc", "a-b"} {
		if dataName.MatchString(field) {
			t.Errorf("field %q would become a column", field)
		}
	}
}

// ratText must spell exactly what FloatString does wherever it answers.
func TestRatTextMatchesFloatString(t *testing.T) {
	vals := []string{"0", "1", "-1", "12.5", "-0.05", "123456789.123", "1/3", "2/7", "-987654321/1000", "9223372036854775807", "-9223372036854775808", "92233720368547758.07", "1e20", "5/8", "-5/8"}
	for _, v := range vals {
		r, ok := new(big.Rat).SetString(v)
		if !ok {
			t.Fatalf("bad test value %s", v)
		}
		for _, scale := range []int{0, 1, 2, 3, 6, 18, 19} {
			got, ok := ratText(r, scale)
			if want := r.FloatString(scale); ok && got != want {
				t.Errorf("ratText(%s, %d) = %q, FloatString says %q", v, scale, got, want)
			}
		}
	}
	if _, ok := ratText(big.NewRat(1, 3), 2); ok {
		t.Error("1/3 at scale 2 is not exact: ratText must leave it to FloatString")
	}
	if s, ok := ratText(big.NewRat(-5, 100), 2); !ok || s != "-0.05" {
		t.Errorf("ratText(-0.05, 2) = %q, %v", s, ok)
	}
}
