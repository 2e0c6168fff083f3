package bqemu

import (
	"encoding/base64"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Stored rows are JSON objects keyed by column name, in a canonical form
// that is exactly what tabledata.list returns: every scalar is a string
// (INTEGER "42", BOOLEAN "true", BYTES base64, TIMESTAMP microseconds since
// the epoch, DATE "2024-01-02", TIME "15:04:05.000001", DATETIME
// "2024-01-02T15:04:05", NUMERIC "1.5"), a REPEATED column is an array and a
// RECORD an object. A column absent from the object is NULL, which is also
// how columns added by a later schema patch read back.

const (
	minTimestampMicros = -62135596800000000 // 0001-01-01 00:00:00 UTC
	maxTimestampMicros = 253402300799999999 // 9999-12-31 23:59:59.999999 UTC
	minDateDays        = -719162            // 0001-01-01
	maxDateDays        = 2932896            // 9999-12-31
)

var (
	numericMax, _    = new(big.Rat).SetString("99999999999999999999999999999.999999999")
	bigNumericMax, _ = new(big.Rat).SetString("578960446186580977117854925043439539266.34992332820282019728792003956564819967")
	pow10            = map[int]*big.Int{9: new(big.Int).Exp(big.NewInt(10), big.NewInt(9), nil), 38: new(big.Int).Exp(big.NewInt(10), big.NewInt(38), nil)}
)

func canonicalInt(v int64) string { return strconv.FormatInt(v, 10) }

func canonicalFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func canonicalBytes(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func canonicalString(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("invalid UTF-8 in STRING value")
	}
	return s, nil
}

func canonicalTimestampMicros(us int64) (string, error) {
	if us < minTimestampMicros || us > maxTimestampMicros {
		return "", fmt.Errorf("TIMESTAMP value %d is out of range", us)
	}
	return strconv.FormatInt(us, 10), nil
}

var timestampLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999Z0700",
	"2006-01-02 15:04:05.999999999 MST",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02",
}

func parseTimestamp(s string) (string, error) {
	s = strings.TrimSpace(s)
	for _, layout := range timestampLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return canonicalTimestampMicros(t.UnixMicro())
		}
	}
	return "", fmt.Errorf("invalid TIMESTAMP value %q", s)
}

func canonicalDateDays(days int64) (string, error) {
	if days < minDateDays || days > maxDateDays {
		return "", fmt.Errorf("DATE value %d is out of range", days)
	}
	return time.Unix(days*86400, 0).UTC().Format(time.DateOnly), nil
}

func parseDate(s string) (string, error) {
	t, err := time.Parse(time.DateOnly, strings.TrimSpace(s))
	if err != nil {
		return "", fmt.Errorf("invalid DATE value %q", s)
	}
	return t.Format(time.DateOnly), nil
}

func formatClock(hour, minute, second, micros int) string {
	if micros == 0 {
		return fmt.Sprintf("%02d:%02d:%02d", hour, minute, second)
	}
	return fmt.Sprintf("%02d:%02d:%02d.%06d", hour, minute, second, micros)
}

func parseTime(s string) (string, error) {
	t, err := time.Parse("15:04:05.999999999", strings.TrimSpace(s))
	if err != nil {
		return "", fmt.Errorf("invalid TIME value %q", s)
	}
	return formatClock(t.Hour(), t.Minute(), t.Second(), t.Nanosecond()/1000), nil
}

func parseDatetime(s string) (string, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{"2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999", time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.Format(time.DateOnly) + "T" + formatClock(t.Hour(), t.Minute(), t.Second(), t.Nanosecond()/1000), nil
		}
	}
	return "", fmt.Errorf("invalid DATETIME value %q", s)
}

// Packed civil times, as in BigQuery's CivilTimeEncoder: the low 20 bits
// hold microseconds, above them seconds (6 bits), minutes (6), hours (5),
// and for DATETIME day (5), month (4) and year (14).
const microBits = 20

func decodePackedTime(v int64) (string, error) {
	micros, secs := v&(1<<microBits-1), v>>microBits
	h, m, s := secs>>12&0x1f, secs>>6&0x3f, secs&0x3f
	if v < 0 || secs>>17 != 0 || h > 23 || m > 59 || s > 59 || micros > 999999 {
		return "", fmt.Errorf("invalid packed TIME value %d", v)
	}
	return formatClock(int(h), int(m), int(s), int(micros)), nil
}

func decodePackedDatetime(v int64) (string, error) {
	micros, secs := v&(1<<microBits-1), v>>microBits
	h, m, s := secs>>12&0x1f, secs>>6&0x3f, secs&0x3f
	day, month, year := secs>>17&0x1f, secs>>22&0xf, secs>>26&0x3fff
	if v < 0 || secs>>40 != 0 || h > 23 || m > 59 || s > 59 || micros > 999999 ||
		year < 1 || year > 9999 || month < 1 || month > 12 || day < 1 {
		return "", fmt.Errorf("invalid packed DATETIME value %d", v)
	}
	d := time.Date(int(year), time.Month(month), int(day), 0, 0, 0, 0, time.UTC)
	if d.Day() != int(day) {
		return "", fmt.Errorf("invalid packed DATETIME value %d", v)
	}
	return d.Format(time.DateOnly) + "T" + formatClock(int(h), int(m), int(s), int(micros)), nil
}

// canonicalDecimal checks r against the column's range and formats it
// with at most scale fractional digits, rounding halves away from zero.
func canonicalDecimal(r *big.Rat, typ string) (string, error) {
	scale, max := 9, numericMax
	if typ == typeBigNumeric {
		scale, max = 38, bigNumericMax
	}
	if new(big.Rat).Abs(r).Cmp(max) > 0 {
		return "", fmt.Errorf("%s value %s is out of range", typ, r.FloatString(scale))
	}
	s := r.FloatString(scale)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" {
		s = "0"
	}
	return s, nil
}

func parseDecimal(s, typ string) (string, error) {
	r, ok := new(big.Rat).SetString(strings.TrimSpace(s))
	if !ok {
		return "", fmt.Errorf("invalid %s value %q", typ, s)
	}
	return canonicalDecimal(r, typ)
}

// decodeDecimalBytes reads the Storage API's binary NUMERIC/BIGNUMERIC
// form: the value times 10^scale as a little-endian two's-complement
// integer.
func decodeDecimalBytes(b []byte, typ string) (string, error) {
	scale := 9
	if typ == typeBigNumeric {
		scale = 38
	}
	be := make([]byte, len(b))
	for i, c := range b {
		be[len(b)-1-i] = c
	}
	n := new(big.Int).SetBytes(be)
	if len(be) > 0 && be[0]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(be))))
	}
	return canonicalDecimal(new(big.Rat).SetFrac(n, pow10[scale]), typ)
}
