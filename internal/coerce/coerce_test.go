package coerce

import (
	"encoding/json"
	"math"
	"math/big"
	"testing"
	"time"
)

func TestIntReadsWholeNumbersInEveryEncoding(t *testing.T) {
	cases := []struct {
		name string
		in   any
		want int64
		ok   bool
	}{
		{"int64", int64(-7), -7, true},
		{"uint8", uint8(200), 200, true},
		{"uint64 beyond int64", uint64(math.MaxUint64), 0, false},
		{"whole float", 5.0, 5, true},
		{"fraction", 5.5, 0, false},
		{"NaN", math.NaN(), 0, false},
		{"+Inf", math.Inf(1), 0, false},
		{"json integer", json.Number("42"), 42, true},
		{"json exponent", json.Number("1e3"), 1000, true},
		{"json fraction", json.Number("1.5"), 0, false},
		{"string", "42", 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := Int(c.in)
			if ok != c.ok || ok && got != c.want {
				t.Errorf("Int(%v) = %d, %v; want %d, %v", c.in, got, ok, c.want, c.ok)
			}
		})
	}
	if _, ok := ExactInt(5.0); ok {
		t.Error("ExactInt took a float")
	}
}

func TestFloatAndDecimal(t *testing.T) {
	if f, ok := Float(json.Number("2.5")); !ok || f != 2.5 {
		t.Errorf("Float(json 2.5) = %v, %v", f, ok)
	}
	if f, ok := Float(int32(3)); !ok || f != 3 {
		t.Errorf("Float(int32 3) = %v, %v", f, ok)
	}
	if _, ok := Float("2.5"); ok {
		t.Error("Float took a string")
	}
	for _, c := range []struct {
		in   any
		want string // as a fraction; "" when refused
	}{
		{0.1, "1/10"},
		{json.Number("12.50"), "25/2"},
		{"1e3", "1000/1"},
		{int64(-4), "-4/1"},
		{big.NewRat(1, 3), "1/3"},
		{math.Inf(-1), ""},
		{"twelve", ""},
		{(*big.Rat)(nil), ""},
	} {
		r, ok := Decimal(c.in)
		switch {
		case !ok && c.want != "":
			t.Errorf("Decimal(%v) refused, want %s", c.in, c.want)
		case ok && r.String() != c.want:
			t.Errorf("Decimal(%v) = %s, want %s", c.in, r, c.want)
		}
	}
}

func TestNumberTextIsTheShortestThatReadsBack(t *testing.T) {
	for in, want := range map[any]string{
		json.Number("1e3"):     "1e3",
		uint64(math.MaxUint64): "18446744073709551615",
		float32(0.1):           "0.1",
		0.1:                    "0.1",
	} {
		if got, ok := NumberText(in); !ok || got != want {
			t.Errorf("NumberText(%v) = %q, %v; want %q", in, got, ok, want)
		}
	}
	if _, ok := NumberText(true); ok {
		t.Error("NumberText took a bool")
	}
}

func TestTimesAndDays(t *testing.T) {
	layouts := []string{time.RFC3339Nano, time.DateOnly}
	if got, ok := Time("2024-05-01", layouts); !ok || !got.Equal(time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("Time(2024-05-01) = %v, %v", got, ok)
	}
	if _, ok := Time(" 2024-05-01", layouts); ok {
		t.Error("Time trimmed spaces; callers decide that")
	}
	for tm, want := range map[time.Time]int64{
		time.Date(1970, 1, 1, 23, 59, 0, 0, time.UTC):   0,
		time.Date(1969, 12, 31, 23, 59, 0, 0, time.UTC): -1,
		time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC):     10957,
	} {
		if got := EpochDays(tm); got != want {
			t.Errorf("EpochDays(%v) = %d, want %d", tm, got, want)
		}
	}
}
