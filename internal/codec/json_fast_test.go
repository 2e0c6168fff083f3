package codec

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/connector"
)

// decodeJSONStdlib is the reference decodeJSONObject must match: what
// JSON.Decode did with encoding/json (a Decoder with UseNumber), except
// that anything but whitespace after the value is trailing data.
// (Decoder.More let a trailing ']' or '}' through.)
func decodeJSONStdlib(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if len(bytes.TrimLeft(data[dec.InputOffset():], " \t\r\n")) > 0 {
		return nil, errors.New("trailing data")
	}
	return m, nil
}

func nested(open, close string, n int, inner string) string {
	return strings.Repeat(open, n) + inner + strings.Repeat(close, n)
}

var jsonEdgeCases = []struct {
	name string
	in   string
	want map[string]any // when ok
	ok   bool
}{
	{name: "empty object", in: `{}`, want: map[string]any{}, ok: true},
	{name: "whitespace around", in: " \t\r\n{ \"a\" : 1 , \"b\" :\n2 }\n ", want: map[string]any{"a": json.Number("1"), "b": json.Number("2")}, ok: true},
	{name: "null is a nil map", in: ` null `, want: nil, ok: true},
	{name: "every type", in: `{"s":"x","n":-1.5e+3,"t":true,"f":false,"z":null,"o":{},"a":[],"m":{"k":[1,"y",{"q":null}]}}`,
		want: map[string]any{"s": "x", "n": json.Number("-1.5e+3"), "t": true, "f": false, "z": nil, "o": map[string]any{}, "a": []any{},
			"m": map[string]any{"k": []any{json.Number("1"), "y", map[string]any{"q": nil}}}}, ok: true},
	{name: "numbers keep their text", in: `{"big":123456789012345678901234567890,"neg0":-0,"exp":0.5E-07}`,
		want: map[string]any{"big": json.Number("123456789012345678901234567890"), "neg0": json.Number("-0"), "exp": json.Number("0.5E-07")}, ok: true},
	{name: "last duplicate key wins", in: `{"a":1,"a":"two"}`, want: map[string]any{"a": "two"}, ok: true},
	{name: "escapes", in: `{"e":"\"\\\/\b\f\n\r\t\u00e9\u0000"}`, want: map[string]any{"e": "\"\\/\b\f\n\r\té\x00"}, ok: true},
	{name: "escaped key", in: `{"k\u00e9y":1}`, want: map[string]any{"kéy": json.Number("1")}, ok: true},
	{name: "surrogate pair", in: `{"s":"\ud83d\ude00"}`, want: map[string]any{"s": "😀"}, ok: true},
	{name: "lone high surrogate", in: `{"s":"\ud83dx"}`, want: map[string]any{"s": "\uFFFDx"}, ok: true},
	{name: "lone low surrogate", in: `{"s":"\ude00"}`, want: map[string]any{"s": "\uFFFD"}, ok: true},
	{name: "high surrogate twice then pair", in: `{"s":"\ud83d\ud83d\ude00"}`, want: map[string]any{"s": "\uFFFD😀"}, ok: true},
	{name: "high surrogate then plain escape", in: `{"s":"\ud83d\u0041"}`, want: map[string]any{"s": "\uFFFDA"}, ok: true},
	{name: "invalid UTF-8 byte", in: "{\"s\":\"a\xffb\"}", want: map[string]any{"s": "a\uFFFDb"}, ok: true},
	{name: "truncated UTF-8 sequence", in: "{\"s\":\"\xe2\x82\"}", want: map[string]any{"s": "\uFFFD\uFFFD"}, ok: true},
	{name: "UTF-8 encoded surrogate", in: "{\"s\":\"\xed\xa0\x80\"}", want: map[string]any{"s": "\uFFFD\uFFFD\uFFFD"}, ok: true},
	{name: "invalid UTF-8 in a key", in: "{\"\xc0\":1}", want: map[string]any{"\uFFFD": json.Number("1")}, ok: true},
	{name: "invalid UTF-8 after an escape", in: "{\"s\":\"\\n\xff\"}", want: map[string]any{"s": "\n\uFFFD"}, ok: true},
	{name: "valid multibyte", in: `{"s":"日本語 ü €"}`, want: map[string]any{"s": "日本語 ü €"}, ok: true},
	{name: "max depth", in: `{"a":` + nested("[", "]", maxJSONDepth-1, "") + `}`,
		want: map[string]any{"a": func() any {
			var v any = []any{}
			for range maxJSONDepth - 2 {
				v = []any{v}
			}
			return v
		}()}, ok: true},

	{name: "too deep", in: `{"a":` + nested("[", "]", maxJSONDepth, "") + `}`},
	{name: "too deep objects", in: nested(`{"a":`, "}", maxJSONDepth+1, "1")},
	{name: "whitespace only", in: " \n"},
	{name: "array", in: `[1]`},
	{name: "string", in: `"s"`},
	{name: "number", in: `1`},
	{name: "boolean", in: `true`},
	{name: "trailing object", in: `{"a":1} {}`},
	{name: "trailing bracket", in: `{"a":1}]`},
	{name: "trailing brace", in: `{"a":1} }`},
	{name: "trailing after null", in: `null]`},
	{name: "byte order mark", in: "\xef\xbb\xbf{}"},
	{name: "unterminated object", in: `{"a":1`},
	{name: "unterminated string", in: `{"a":"b`},
	{name: "key without value", in: `{"a"}`},
	{name: "missing colon", in: `{"a" 1}`},
	{name: "unquoted key", in: `{a:1}`},
	{name: "single quotes", in: `{'a':1}`},
	{name: "trailing comma in object", in: `{"a":1,}`},
	{name: "trailing comma in array", in: `{"a":[1,]}`},
	{name: "leading comma", in: `{,"a":1}`},
	{name: "missing comma", in: `{"a":1 "b":2}`},
	{name: "leading zero", in: `{"a":01}`},
	{name: "plus sign", in: `{"a":+1}`},
	{name: "bare minus", in: `{"a":-}`},
	{name: "no fraction digits", in: `{"a":1.}`},
	{name: "no integer digits", in: `{"a":.5}`},
	{name: "no exponent digits", in: `{"a":1e+}`},
	{name: "hex number", in: `{"a":0x1}`},
	{name: "NaN", in: `{"a":NaN}`},
	{name: "truncated literal", in: `{"a":tru}`},
	{name: "misspelt literal", in: `{"a":nul1}`},
	{name: "capitalised literal", in: `{"a":True}`},
	{name: "invalid escape", in: `{"a":"\x41"}`},
	{name: "escaped single quote", in: `{"a":"\'"}`},
	{name: "short unicode escape", in: `{"a":"\u12"}`},
	{name: "non-hex unicode escape", in: `{"a":"\u12g4"}`},
	{name: "raw tab in string", in: "{\"a\":\"\t\"}"},
	{name: "raw newline in key", in: "{\"\n\":1}"},
	{name: "escape at end", in: `{"a":"\`},
}

func TestDecodeJSONObject(t *testing.T) {
	for _, tc := range jsonEdgeCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeJSONObject([]byte(tc.in))
			if (err == nil) != tc.ok {
				t.Fatalf("decodeJSONObject(%q) error = %v, want ok = %v", tc.in, err, tc.ok)
			}
			if tc.ok && !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("decodeJSONObject(%q) = %#v, want %#v", tc.in, got, tc.want)
			}
			// The expectations are encoding/json's.
			ref, refErr := decodeJSONStdlib([]byte(tc.in))
			if (refErr == nil) != tc.ok || !reflect.DeepEqual(ref, tc.want) && tc.ok {
				t.Fatalf("encoding/json gives %#v, %v: the case is wrong", ref, refErr)
			}
			// Through the decoder: bad input is a RecordError naming JSON.
			rec := &connector.Record{Value: []byte(tc.in), Offset: 7}
			err = JSON{}.Decode(context.Background(), rec)
			switch {
			case tc.ok && (err != nil || !reflect.DeepEqual(rec.Fields, tc.want)):
				t.Fatalf("JSON.Decode = %v, Fields %#v", err, rec.Fields)
			case !tc.ok && reasonOf(err) != "json":
				t.Fatalf("JSON.Decode error = %v, want a RecordError with reason json", err)
			}
		})
	}
}

func TestJSONDecodeErrorSaysWhere(t *testing.T) {
	rec := &connector.Record{Value: []byte(`{"id":1,"name":x}`)}
	err := JSON{}.Decode(context.Background(), rec)
	var re *connector.RecordError
	if !errors.As(err, &re) || re.Record != rec {
		t.Fatalf("Decode error = %v, want a RecordError for the record", err)
	}
	if want := `decoding JSON value: invalid character 'x' looking for beginning of value at offset 15`; re.Err.Error() != want {
		t.Fatalf("error = %q, want %q", re.Err, want)
	}
}

// The parser reuses its stacks: a document decoded after a failed one must
// not see the failed one's members.
func TestDecodeJSONObjectAfterFailure(t *testing.T) {
	if _, err := decodeJSONObject([]byte(`{"a":{"b":[1,2,{"c":3,`)); err == nil {
		t.Fatal("truncated document decoded")
	}
	got, err := decodeJSONObject([]byte(`{"x":[{"y":1}]}`))
	want := map[string]any{"x": []any{map[string]any{"y": json.Number("1")}}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("decodeJSONObject = %#v, %v; want %#v", got, err, want)
	}
}

// FuzzJSONMatchesStdlib holds the hand-written decoder to encoding/json on
// arbitrary bytes: the same documents accepted, the same values.
func FuzzJSONMatchesStdlib(f *testing.F) {
	for _, tc := range jsonEdgeCases {
		if len(tc.in) < 1000 {
			f.Add([]byte(tc.in))
		}
	}
	value, err := JSONEncoder{}.Encode(context.Background(), "t", &connector.Record{Fields: event20})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(value)
	f.Add([]byte(`{"a" : { "b" : [ 1 , "<&>" , {"c":"\u00e9"} ] }, "d":"x\ty"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		want, wantErr := decodeJSONStdlib(data)
		got, err := decodeJSONObject(data)
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("decodeJSONObject(%q) error = %v; encoding/json error = %v", data, err, wantErr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("decodeJSONObject(%q) = %#v; encoding/json gives %#v", data, got, want)
		}
		checkVisitMatchesDecoder(t, data)
		checkScanMatchesDecoder(t, data)
	})
}

// checkVisitMatchesDecoder holds VisitJSONValue to the json value decoder:
// the members it visits, folded into a map, are the decoder's Fields, and
// bad input is the same error.
func checkVisitMatchesDecoder(t *testing.T, data []byte) {
	t.Helper()
	dec, err := NewDecoder(Options{Value: FormatJSON})
	if err != nil {
		t.Fatal(err)
	}
	want := &connector.Record{Value: data, Offset: 9}
	wantErr := dec.Decode(context.Background(), want)
	var got map[string]any
	rec := &connector.Record{Value: data, Offset: 9}
	err = VisitJSONValue(rec, func(k string, v any) {
		if got == nil {
			got = map[string]any{}
		}
		got[k] = v
	})
	if (err == nil) != (wantErr == nil) || err != nil && (err.Error() != wantErr.Error() || reasonOf(err) != reasonOf(wantErr)) {
		t.Fatalf("VisitJSONValue(%q) error = %v; the decoder says %v", data, err, wantErr)
	}
	if err == nil && len(got)+len(want.Fields) > 0 && !reflect.DeepEqual(got, want.Fields) {
		t.Fatalf("VisitJSONValue(%q) visits %#v; the decoder gives %#v", data, got, want.Fields)
	}
}

func TestVisitJSONValueMatchesDecoder(t *testing.T) {
	for _, tc := range jsonEdgeCases {
		t.Run(tc.name, func(t *testing.T) { checkVisitMatchesDecoder(t, []byte(tc.in)) })
	}
	for _, in := range []string{``, `null`, ` {"a":1,"a":2} `, `{"a":{"b":1},"c":[1,{"d":"x"}]}`, `{"a":1} x`, `{"a":{"b":1}`} {
		checkVisitMatchesDecoder(t, []byte(in))
	}
	// Nothing is visited for a document that turns out bad after its
	// first members.
	visited := 0
	err := VisitJSONValue(&connector.Record{Value: []byte(`{"a":1,"b":2,"c":}`)}, func(string, any) { visited++ })
	if err == nil || visited != 0 {
		t.Fatalf("bad document: error %v, %d members visited", err, visited)
	}
}

// sqlBenchValue is a record of the Kafka -> SQL benchmarks.
const sqlBenchValue = `{"id":123456,"name":"item 123456","price":456.5,"category":"category-16","sku":"SKU-00123456","description":"lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor","in_stock":true,"updated_at":"2024-05-01T12:34:56Z"}`

// BenchmarkJSONObject compares JSON.Decode with what it replaced.
func BenchmarkJSONObject(b *testing.B) {
	event, err := JSONEncoder{}.Encode(context.Background(), "t", &connector.Record{Fields: event20})
	if err != nil {
		b.Fatal(err)
	}
	for _, doc := range []struct {
		name  string
		value []byte
	}{{"event20", event}, {"sql8", []byte(sqlBenchValue)}} {
		for _, impl := range []struct {
			name   string
			decode func([]byte) (map[string]any, error)
		}{{"fast", decodeJSONObject}, {"stdlib", decodeJSONStdlib}} {
			b.Run(fmt.Sprintf("%s/%s", doc.name, impl.name), func(b *testing.B) {
				b.SetBytes(int64(len(doc.value)))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := impl.decode(doc.value); err != nil {
						b.Fatal(err)
					}
				}
				reportRecordsPerSecond(b)
			})
		}
	}
}

// The word-at-a-time string scan must stop at every byte the byte loop
// stops at, wherever it sits in the word.
func TestHasSpecialByteMatchesPlainByte(t *testing.T) {
	for b := 0; b < 256; b++ {
		for k := range 8 {
			word := []byte("abcdefgh")
			word[k] = byte(b)
			got := hasSpecialByte(binary.LittleEndian.Uint64(word))
			if got != !plainByte[b] {
				t.Fatalf("hasSpecialByte(%q) = %v, want %v", word, got, !plainByte[b])
			}
		}
	}
}

func TestRecordDecoderJSONValues(t *testing.T) {
	dec, err := NewDecoder(Options{Value: FormatJSON})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		in      string
		bad     bool
		nilMap  bool
		wantKey string
	}{
		{in: `{"id": 1, "name": "x"}`, wantKey: "name"},
		{in: `null`, nilMap: true},
		{in: `{"a":1}]`, bad: true},
		{in: `[1,2]`, bad: true},
		{in: `{"a":`, bad: true},
	} {
		rec := &connector.Record{Topic: "t", Value: []byte(tc.in)}
		err := dec.Decode(context.Background(), rec)
		var re *connector.RecordError
		if tc.bad != errors.As(err, &re) {
			t.Fatalf("%s: err = %v, want bad input %v", tc.in, err, tc.bad)
		}
		if tc.nilMap && rec.Fields != nil {
			t.Fatalf("%s: Fields = %v, want nil", tc.in, rec.Fields)
		}
		if tc.wantKey != "" && rec.Fields[tc.wantKey] == nil {
			t.Fatalf("%s: Fields = %v", tc.in, rec.Fields)
		}
	}
}
