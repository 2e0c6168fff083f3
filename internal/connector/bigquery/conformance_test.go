package bigquery

import (
	"fmt"
	"testing"

	"github.com/sluice-dev/sluice/internal/bqemu"
	"github.com/sluice-dev/sluice/internal/codec"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/connector/conformance"
)

// The BigQuery sink (default stream, at least once) against the
// emulator, driven through Google's client library. Bad records are of two
// kinds: one without a decoded value (a tombstone) and one whose table
// template it lacks the field for.
func TestBigQuerySinkConformance(t *testing.T) {
	conformance.Run(t, func(t *testing.T) conformance.Target { return conformanceTarget(t, false) })
}

// The same in exactly-once mode: PENDING streams, committed per table,
// deduplicated by the offsets in the rows.
func TestBigQuerySinkConformanceExactlyOnce(t *testing.T) {
	conformance.Run(t, func(t *testing.T) conformance.Target { return conformanceTarget(t, true) })
}

// Both again with JSON values undecoded, written straight into proto rows
// (the template skims .Value.dest).
func TestBigQuerySinkConformanceJSONDirect(t *testing.T) {
	conformance.Run(t, func(t *testing.T) conformance.Target { return conformanceTargetWith(t, false, true) })
}

func TestBigQuerySinkConformanceExactlyOnceJSONDirect(t *testing.T) {
	conformance.Run(t, func(t *testing.T) conformance.Target { return conformanceTargetWith(t, true, true) })
}

func conformanceTarget(t *testing.T, exactlyOnce bool) conformance.Target {
	return conformanceTargetWith(t, exactlyOnce, false)
}

// conformanceTargetWith: undecoded, the sink takes JSON values as they
// are (Options.JSON) and its bad records are a tombstone and a value
// without the template's field.
func conformanceTargetWith(t *testing.T, exactlyOnce, undecoded bool) conformance.Target {
	e, addrs := startEmulator(t, bqemu.Faults{})
	o := Options{Config: sinkConfig(addrs, "{{.Value.dest}}"), ExactlyOnce: exactlyOnce}
	if undecoded {
		dec, err := codec.NewDecoder(codec.Options{Value: codec.FormatJSON})
		if err != nil {
			t.Fatal(err)
		}
		o.JSON = dec
	}
	s := newSinkWith(t, o)
	next := int64(0)
	held := func(t *testing.T) map[conformance.Key]int {
		held := map[conformance.Key]int{}
		all, err := e.Rows(t.Context(), testProject, testDataset, "conf")
		if err != nil {
			// No table yet: nothing was written (create_tables
			// makes it with the first good row).
			t.Logf("reading table conf: %v", err)
			return held
		}
		for _, r := range all {
			p, okP := r["p"].(int64)
			o, okO := r["o"].(int64)
			if !okP || !okO {
				t.Fatalf("row %v lacks its INT64 p and o", r)
			}
			held[conformance.Key{Partition: int32(p), Offset: o}]++
		}
		return held
	}
	tg := conformance.Target{
		Sink:        conformance.Owned(t, s),
		ExactlyOnce: exactlyOnce,
		Held:        held,
		Records: func(t *testing.T, bad []bool) []*connector.Record {
			n := 0
			recs := conformance.Spread("conf", next, bad, func(rec *connector.Record, bad bool) {
				good := jsonRecord(t, "conf", rec.Offset, fmt.Sprintf(`{"dest":"conf","p":%d,"o":%d}`, rec.Partition, rec.Offset))
				rec.Value, rec.Fields = good.Value, good.Fields
				if bad {
					if n%2 == 0 {
						rec.Fields = nil
						if undecoded {
							rec.Value = nil
						}
					} else {
						delete(rec.Fields, "dest")
						rec.Value = fmt.Appendf(nil, `{"p":%d,"o":%d}`, rec.Partition, rec.Offset)
					}
					n++
				}
				if undecoded {
					rec.Fields = nil
				}
			})
			next += int64(len(bad))
			return recs
		},
	}
	if exactlyOnce {
		// The offsets stored are those in the rows: the next one per
		// partition is the highest held plus one.
		tg.Stored = func(t *testing.T) map[int32]int64 {
			stored := map[int32]int64{}
			for k := range held(t) {
				if k.Offset+1 > stored[k.Partition] {
					stored[k.Partition] = k.Offset + 1
				}
			}
			return stored
		}
	}
	return tg
}
