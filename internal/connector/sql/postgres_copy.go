package sql

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// copyRows writes rows with COPY ... FROM STDIN in the binary format: the
// protocol of pgx.Conn.CopyFrom, and the same bytes, but the canonical
// values convert returns (int64, string, bool, float64, time.Time into
// the matching column types, and the decimal text of toDecimal into
// numeric) are encoded directly. pgx plans every value through its type
// map, which cost more than the conversion itself; anything else still
// goes through that type map, exactly as pgx.Conn.CopyFrom would send it.
func copyRows(ctx context.Context, conn *pgx.Conn, types *copyTypes, table tableName, cols []string, rows [][]any) error {
	id := pgx.Identifier{table.name}
	if table.schema != "" {
		id = pgx.Identifier{table.schema, table.name}
	}
	quotedTable := id.Sanitize()
	var quotedCols strings.Builder
	for i, c := range cols {
		if i > 0 {
			quotedCols.WriteString(", ")
		}
		quotedCols.WriteString(`"` + strings.ReplaceAll(c, `"`, `""`) + `"`)
	}
	describe := "select " + quotedCols.String() + " from " + quotedTable
	oids, err := types.get(ctx, conn, describe)
	if err != nil {
		return fmt.Errorf("statement description failed: %w", err)
	}
	r := &copyReader{m: conn.TypeMap(), oids: oids, rows: rows}
	r.buf = append(r.buf, "PGCOPY\n\377\r\n\000"...)
	r.buf = binary.BigEndian.AppendUint32(r.buf, 0) // flags
	r.buf = binary.BigEndian.AppendUint32(r.buf, 0) // header extension length
	_, err = conn.PgConn().CopyFrom(ctx, r, "copy "+quotedTable+" ( "+quotedCols.String()+" ) from stdin binary;")
	if err != nil {
		types.forget(describe) // the table may have changed: describe it again
	}
	return err
}

// copyTypes caches the column types of COPY targets (by the query that
// describes them), as pgx's statement cache does for pgx.Conn.CopyFrom,
// but without a prepared statement left on each connection. A failed
// COPY drops its entry. Safe for concurrent use.
type copyTypes struct {
	mu   sync.Mutex
	oids map[string][]uint32
}

// maxCopyTypes bounds the cache: batches with varying sets of fields each
// have their own column list.
const maxCopyTypes = 256

func (c *copyTypes) get(ctx context.Context, conn *pgx.Conn, describe string) ([]uint32, error) {
	c.mu.Lock()
	oids, ok := c.oids[describe]
	c.mu.Unlock()
	if ok {
		return oids, nil
	}
	sd, err := conn.Prepare(ctx, "", describe)
	if err != nil {
		return nil, err
	}
	oids = make([]uint32, len(sd.Fields))
	for i, f := range sd.Fields {
		oids[i] = f.DataTypeOID
	}
	c.mu.Lock()
	if c.oids == nil || len(c.oids) >= maxCopyTypes {
		c.oids = map[string][]uint32{}
	}
	c.oids[describe] = oids
	c.mu.Unlock()
	return oids, nil
}

func (c *copyTypes) forget(describe string) {
	c.mu.Lock()
	delete(c.oids, describe)
	c.mu.Unlock()
}

// copyReader encodes rows as pgconn reads them (on its sending
// goroutine): about one read buffer at a time, never all rows at once.
type copyReader struct {
	m    *pgtype.Map
	oids []uint32
	rows [][]any
	next int    // next row to encode
	buf  []byte // encoded, from off on not yet read
	off  int
}

func (r *copyReader) Read(p []byte) (int, error) {
	if r.off > 0 {
		r.buf = r.buf[:copy(r.buf, r.buf[r.off:])]
		r.off = 0
	}
	for len(r.buf) < len(p) && r.next < len(r.rows) {
		vals := r.rows[r.next]
		if len(vals) != len(r.oids) {
			return 0, fmt.Errorf("expected %d values, got %d values", len(r.oids), len(vals))
		}
		r.buf = binary.BigEndian.AppendUint16(r.buf, uint16(len(vals)))
		for i, v := range vals {
			var err error
			if r.buf, err = appendCopyValue(r.m, r.buf, r.oids[i], v); err != nil {
				return 0, err
			}
		}
		r.next++
	}
	n := copy(p, r.buf)
	r.off = n
	if n == 0 && r.next == len(r.rows) {
		return 0, io.EOF
	}
	return n, nil
}

// microsecFromUnixEpochToY2K is where PostgreSQL timestamps count from.
const microsecFromUnixEpochToY2K = 946_684_800 * 1_000_000

// appendCopyValue appends v as a field of a binary COPY row: its length
// (-1 for NULL) and its bytes.
func appendCopyValue(m *pgtype.Map, buf []byte, oid uint32, v any) ([]byte, error) {
	be := binary.BigEndian
	switch x := v.(type) {
	case nil:
		return be.AppendUint32(buf, math.MaxUint32), nil // -1: NULL
	case int64:
		switch {
		case oid == pgtype.Int8OID:
			return be.AppendUint64(be.AppendUint32(buf, 8), uint64(x)), nil
		case oid == pgtype.Int4OID && x >= math.MinInt32 && x <= math.MaxInt32:
			return be.AppendUint32(be.AppendUint32(buf, 4), uint32(int32(x))), nil
		case oid == pgtype.Int2OID && x >= math.MinInt16 && x <= math.MaxInt16:
			return be.AppendUint16(be.AppendUint32(buf, 2), uint16(int16(x))), nil
		}
	case string:
		switch oid {
		case pgtype.TextOID, pgtype.VarcharOID:
			return append(be.AppendUint32(buf, uint32(len(x))), x...), nil
		case pgtype.NumericOID: // from toDecimal
			if out, ok := appendNumeric(buf, x); ok {
				return out, nil
			}
			v = pgNumeric(x) // a Numeric, as the sink gave pgx before
		}
	case bool:
		if oid == pgtype.BoolOID {
			b := byte(0)
			if x {
				b = 1
			}
			return append(be.AppendUint32(buf, 1), b), nil
		}
	case float64:
		if oid == pgtype.Float8OID {
			return be.AppendUint64(be.AppendUint32(buf, 8), math.Float64bits(x)), nil
		}
	case time.Time:
		switch oid {
		case pgtype.TimestamptzOID:
			return be.AppendUint64(be.AppendUint32(buf, 8), uint64(microsecSinceY2K(x))), nil
		case pgtype.TimestampOID:
			if x.Location() != time.UTC { // the wall clock, as pgx's TimestampCodec
				x = time.Date(x.Year(), x.Month(), x.Day(), x.Hour(), x.Minute(), x.Second(), x.Nanosecond(), time.UTC)
			}
			return be.AppendUint64(be.AppendUint32(buf, 8), uint64(microsecSinceY2K(x))), nil
		}
	}
	return encodeCopyValue(m, buf, oid, v)
}

func microsecSinceY2K(t time.Time) int64 {
	return t.Unix()*1_000_000 + int64(t.Nanosecond())/1000 - microsecFromUnixEpochToY2K
}

// encodeCopyValue is pgx's own (values.go, unexported): through the type
// map, and for a value it cannot encode in binary, through its text form.
func encodeCopyValue(m *pgtype.Map, buf []byte, oid uint32, arg any) ([]byte, error) {
	sp := len(buf)
	buf = binary.BigEndian.AppendUint32(buf, math.MaxUint32)
	argBuf, err := m.Encode(oid, pgtype.BinaryFormatCode, arg, buf)
	if err != nil {
		if argBuf2, err2 := tryScanStringCopyValueThenEncode(m, buf, oid, arg); err2 == nil {
			argBuf = argBuf2
		} else {
			return nil, err
		}
	}
	if argBuf != nil {
		buf = argBuf
		binary.BigEndian.PutUint32(buf[sp:], uint32(len(buf[sp:])-4))
	}
	return buf, nil
}

func tryScanStringCopyValueThenEncode(m *pgtype.Map, buf []byte, oid uint32, arg any) ([]byte, error) {
	s, ok := arg.(string)
	if !ok {
		textBuf, err := m.Encode(oid, pgtype.TextFormatCode, arg, nil)
		if err != nil {
			return nil, errors.New("not a string and cannot be encoded as text")
		}
		s = string(textBuf)
	}
	if typ, ok := m.TypeForOID(oid); ok {
		if _, ok := typ.Codec.(*pgtype.ArrayCodec); ok {
			var arr pgtype.Array[any]
			if err := m.Scan(oid, pgtype.TextFormatCode, []byte(s), &arr); err == nil {
				return m.Encode(oid, pgtype.BinaryFormatCode, arr, buf)
			}
		}
	}
	var v any
	if err := m.Scan(oid, pgtype.TextFormatCode, []byte(s), &v); err != nil {
		return nil, err
	}
	return m.Encode(oid, pgtype.BinaryFormatCode, v, buf)
}

// appendNumeric appends s, decimal text as toDecimal returns it
// ([+-]digits[.digits]), in numeric's binary form: base-10000 digits
// around the point, weight (of the first digit group), sign, display
// scale (the digits after the point, as pgx sends). It declines what it
// does not expect, which then goes through pgx.
func appendNumeric(buf []byte, s string) ([]byte, bool) {
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	whole, frac, _ := strings.Cut(s, ".")
	if len(whole)+len(frac) == 0 || len(whole)+len(frac) > 1000 || !allDigits(whole) || !allDigits(frac) {
		return buf, false
	}
	dscale := len(frac)
	whole = strings.TrimLeft(whole, "0")
	// Digit groups: whole from the right, frac from the left.
	var groups [256]int16
	digits := groups[:0]
	if n := len(whole) % 4; n > 0 {
		digits = append(digits, int16(atoi4(whole[:n])))
		whole = whole[n:]
	}
	for ; len(whole) > 0; whole = whole[4:] {
		digits = append(digits, int16(atoi4(whole[:4])))
	}
	weight := len(digits) - 1
	for ; len(frac) > 0; frac = frac[min(4, len(frac)):] {
		g := frac[:min(4, len(frac))]
		d := atoi4(g)
		for range 4 - len(g) {
			d *= 10
		}
		if len(digits) == 0 && d == 0 {
			weight-- // a leading zero group after the point
			continue
		}
		digits = append(digits, int16(d))
	}
	for len(digits) > 0 && digits[len(digits)-1] == 0 {
		digits = digits[:len(digits)-1]
	}
	if len(digits) == 0 {
		neg, weight = false, 0
	}
	be := binary.BigEndian
	buf = be.AppendUint32(buf, uint32(8+2*len(digits)))
	buf = be.AppendUint16(buf, uint16(len(digits)))
	buf = be.AppendUint16(buf, uint16(int16(weight)))
	sign := uint16(0)
	if neg {
		sign = 0x4000
	}
	buf = be.AppendUint16(buf, sign)
	buf = be.AppendUint16(buf, uint16(dscale))
	for _, d := range digits {
		buf = be.AppendUint16(buf, uint16(d))
	}
	return buf, true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// atoi4 is the value of up to 4 decimal digits.
func atoi4(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}
