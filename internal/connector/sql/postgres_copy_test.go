package sql

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// copyTestConn connects to the test stack's PostgreSQL (see DESIGN.md).
func copyTestConn(t *testing.T) *pgx.Conn {
	t.Helper()
	dsn := os.Getenv("SLUICE_TEST_POSTGRES_DSN")
	if dsn == "" {
		dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx := context.Background()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connecting to the test postgres: %v (is it running? see DESIGN.md, test stack)", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// copyBothWays writes rows into two tables of the given columns, with
// pgx.Conn.CopyFrom (given what the sink gave it before copyRows: Numeric
// for the decimal text of columns named num*) and with copyRows, and
// returns both tables as text.
func copyBothWays(t *testing.T, c *pgx.Conn, columns string, names []string, rows [][]any) (viaPgx, viaCopyRows []string) {
	t.Helper()
	ctx := context.Background()
	suffix := fmt.Sprintf("%d_%d", time.Now().UnixNano(), rand.IntN(1e6))
	a, b := "copy_pgx_"+suffix, "copy_rows_"+suffix
	for _, tbl := range []string{a, b} {
		if _, err := c.Exec(ctx, fmt.Sprintf("CREATE TABLE %s (n serial, %s)", tbl, columns)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = c.Exec(context.Background(), "DROP TABLE IF EXISTS "+tbl) })
	}
	old := make([][]any, len(rows))
	for i, r := range rows {
		old[i] = make([]any, len(r))
		for j, v := range r {
			if d, ok := v.(string); ok && strings.HasPrefix(names[j], "num") {
				v = pgNumeric(d)
			}
			old[i][j] = v
		}
	}
	if _, err := c.CopyFrom(ctx, pgx.Identifier{a}, names, pgx.CopyFromRows(old)); err != nil {
		t.Fatalf("pgx CopyFrom: %v", err)
	}
	if err := copyRows(ctx, c, &copyTypes{}, tableName{name: b}, names, rows); err != nil {
		t.Fatalf("copyRows: %v", err)
	}
	dump := func(tbl string) []string {
		rs, err := c.Query(ctx, fmt.Sprintf("SELECT %s::text FROM %s ORDER BY n", tbl, tbl))
		if err != nil {
			t.Fatal(err)
		}
		out, err := pgx.CollectRows(rs, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		for i := range out {
			_, out[i], _ = strings.Cut(out[i], ",") // the serial
		}
		return out
	}
	return dump(a), dump(b)
}

func TestSQLPostgresCopyRowsStoresWhatPgxStores(t *testing.T) {
	c := copyTestConn(t)
	columns := `i8 bigint, i4 integer, i2 smallint, t text, vc varchar(20), b boolean, f8 double precision, f4 real,
		tstz timestamptz, ts timestamp, d date, tod time, num numeric, num2 numeric(12,3), j jsonb, u uuid, by bytea, bp char(3)`
	names := []string{"i8", "i4", "i2", "t", "vc", "b", "f8", "f4", "tstz", "ts", "d", "tod", "num", "num2", "j", "u", "by", "bp"}
	at := time.Date(2024, 5, 1, 12, 34, 56, 789123456, time.UTC)
	rows := [][]any{
		{int64(math.MaxInt64), int64(math.MinInt32), int64(math.MaxInt16), "héllo\ttab", "vc", true, 1.5, 2.25,
			at, at, time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), pgtype.Time{Microseconds: 3723000001, Valid: true},
			("-123456789012345678901234567890.000012345"), ("1234.5678"), `{"a":[1,2]}`,
			"6ba7b810-9dad-11d1-80b4-00c04fd430c8", []byte{0, 1, 255}, "ab"},
		{int64(-1), int64(0), int64(-1), "", "", false, math.Inf(-1), -0.5,
			time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(1999, 12, 31, 23, 59, 59, 999999999, time.FixedZone("x", 3600)), nil, nil,
			("0"), ("-0.000"), nil, nil, nil, nil},
		{nil, nil, nil, nil, nil, nil, math.NaN(), nil,
			time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), nil, nil, nil,
			("+.5"), ("7."), nil, nil, nil, nil},
	}
	viaPgx, viaCopyRows := copyBothWays(t, c, columns, names, rows)
	if strings.Join(viaPgx, "\n") != strings.Join(viaCopyRows, "\n") {
		t.Fatalf("copyRows stored\n%s\npgx stored\n%s", strings.Join(viaCopyRows, "\n"), strings.Join(viaPgx, "\n"))
	}
}

// Decimals go into numeric as base-10000 digit groups: every shape of
// text (zeros around and inside the groups, signs, scales) must store
// the number pgx stores.
func TestSQLPostgresCopyRowsNumericMatchesPgx(t *testing.T) {
	c := copyTestConn(t)
	texts := []string{"0", "-0", "0.0", "00012.3400", "10000", "100000000", "99999999.99999999", "0.0001", "0.00001",
		"-0.000000001", "123456789.123456789", "1.0000000000000000000001", "-9999", "5", "-5.", ".25"}
	rnd := rand.New(rand.NewPCG(1, 2))
	digits := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('0' + rnd.IntN(10))
			if rnd.IntN(3) == 0 {
				b[i] = '0'
			}
		}
		return string(b)
	}
	for range 300 {
		s := digits(rnd.IntN(25))
		if rnd.IntN(2) == 0 {
			s += "." + digits(rnd.IntN(25))
		}
		if s == "" || s == "." {
			s = "0"
		}
		if rnd.IntN(2) == 0 {
			s = "-" + s
		}
		texts = append(texts, s)
	}
	var rows [][]any
	for _, s := range texts {
		rows = append(rows, []any{(s), (s)})
	}
	viaPgx, viaCopyRows := copyBothWays(t, c, "num numeric, num2 numeric(60,10)", []string{"num", "num2"}, rows)
	for i := range texts {
		if viaPgx[i] != viaCopyRows[i] {
			t.Errorf("%q: copyRows stored %s, pgx %s", texts[i], viaCopyRows[i], viaPgx[i])
		}
	}
}

// The column types of a COPY target are cached: after the table changes
// under the sink, at most one COPY may fail on the old types; the next
// describes the table again.
func TestSQLPostgresCopyRowsAfterAColumnTypeChange(t *testing.T) {
	c := copyTestConn(t)
	ctx := context.Background()
	tbl := fmt.Sprintf("copy_alter_%d_%d", time.Now().UnixNano(), rand.IntN(1e6))
	if _, err := c.Exec(ctx, "CREATE TABLE "+tbl+" (n integer)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = c.Exec(context.Background(), "DROP TABLE IF EXISTS "+tbl) })
	types := &copyTypes{}
	write := func(n int64) error {
		return copyRows(ctx, c, types, tableName{name: tbl}, []string{"n"}, [][]any{{n}})
	}
	if err := write(1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "ALTER TABLE "+tbl+" ALTER COLUMN n TYPE bigint"); err != nil {
		t.Fatal(err)
	}
	first := write(1 << 40) // may fail: integer is what the cache says
	if err := write(1 << 41); err != nil {
		t.Fatalf("second COPY after the change = %v (first: %v), want the table described again", err, first)
	}
	rows, _ := c.Query(ctx, "SELECT n FROM "+tbl+" WHERE n > 1 ORDER BY n")
	got, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil || len(got) == 0 || got[len(got)-1] != 1<<41 {
		t.Fatalf("rows above 1 = %v, %v; want %d last", got, err, int64(1)<<41)
	}
}
