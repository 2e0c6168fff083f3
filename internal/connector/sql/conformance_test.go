package sql_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/codec"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/connector/conformance"
)

// Every SQL sink, in both delivery modes, against its real database.
// Bad records are of two kinds: a value the sink cannot convert for its
// column (found while mapping), and, where the database enforces it, a
// value the database itself refuses inside the transaction.
func TestSQLSinkConformance(t *testing.T) {
	for _, kind := range kinds {
		for _, eos := range []bool{false, true} {
			mode := "at_least_once"
			if eos {
				mode = "exactly_once"
			}
			t.Run(kind+"/"+mode, func(t *testing.T) {
				conformance.Run(t, func(t *testing.T) conformance.Target { return sqlTarget(t, kind, eos) })
			})
		}
	}
}

func sqlTarget(t *testing.T, kind string, eos bool) conformance.Target {
	d := openTestDB(t, kind)
	tbl, pipe := uniqueName("conf"), uniqueName("p")
	d.dropAfter(t, pipe, tbl)
	d.exec(t, fmt.Sprintf("CREATE TABLE %s (id integer NOT NULL, name varchar(8), _partition integer, _offset bigint)", tbl))
	cfg := d.cfg
	cfg.Table = tbl
	cfg.Metadata = []string{"_partition", "_offset"}
	s := newSink(t, d, pipe, cfg, eos)
	next := int64(0)
	tg := conformance.Target{
		Sink:        conformance.Owned(t, s),
		ExactlyOnce: eos,
		Records: func(t *testing.T, bad []bool) []*connector.Record {
			n := 0
			recs := conformance.Spread("conf", next, bad, func(rec *connector.Record, bad bool) {
				switch {
				case !bad:
					rec.Value = fmt.Appendf(nil, `{"id":%d,"name":"ok"}`, rec.Offset)
				case n%2 == 0 || kind == "sqlite": // SQLite does not enforce varchar lengths
					rec.Value = []byte(`{"id":"not a number","name":"bad"}`)
					n++
				default:
					rec.Value = fmt.Appendf(nil, `{"id":%d,"name":"far too long for eight"}`, rec.Offset)
					n++
				}
				if err := (codec.JSON{}).Decode(t.Context(), rec); err != nil {
					t.Fatal(err)
				}
			})
			next += int64(len(bad))
			return recs
		},
		Held: func(t *testing.T) map[conformance.Key]int {
			held := map[conformance.Key]int{}
			for _, row := range d.strings(t, fmt.Sprintf("SELECT _partition, _offset FROM %s", tbl)) {
				var k conformance.Key
				if _, err := fmt.Sscan(row, &k.Partition, &k.Offset); err != nil {
					t.Fatalf("row %q: %v", row, err)
				}
				held[k]++
			}
			return held
		},
	}
	if eos {
		q := `"partition"`
		if kind == "mysql" {
			q = "`partition`"
		}
		tg.Stored = func(t *testing.T) map[int32]int64 {
			stored := map[int32]int64{}
			rows := d.strings(t, fmt.Sprintf("SELECT %s, next_offset FROM sluice_offsets WHERE pipeline = '%s' AND topic = 'conf'", q, pipe))
			for _, row := range rows {
				var p int32
				var off int64
				if _, err := fmt.Sscan(strings.TrimSpace(row), &p, &off); err != nil {
					t.Fatalf("offset row %q: %v", row, err)
				}
				stored[p] = off
			}
			return stored
		}
	}
	return tg
}
