package file

import (
	"bufio"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/connector/conformance"
)

func TestFileSinkConformance(t *testing.T) {
	conformance.Run(t, func(t *testing.T) conformance.Target {
		path := filepath.Join(t.TempDir(), "out.jsonl")
		s, err := NewSink(path, true)
		if err != nil {
			t.Fatal(err)
		}
		next := int64(0)
		return conformance.Target{
			Sink: conformance.Owned(t, s),
			Records: func(t *testing.T, bad []bool) []*connector.Record {
				recs := conformance.Spread("t", next, bad, func(rec *connector.Record, bad bool) {
					rec.Value = []byte("v")
					rec.Fields = map[string]any{"n": 1.5}
					if bad {
						// encoding/json refuses NaN: the record cannot be a line.
						rec.Fields["n"] = math.NaN()
					}
				})
				next += int64(len(bad))
				return recs
			},
			Held: func(t *testing.T) map[conformance.Key]int {
				return heldLines(t, path)
			},
		}
	})
}

// heldLines counts the records in the file by partition and offset, and
// fails on a line that is not a whole JSON object.
func heldLines(t *testing.T, path string) map[conformance.Key]int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	held := map[conformance.Key]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("torn or invalid line %q: %v", sc.Text(), err)
		}
		held[conformance.Key{Partition: l.Partition, Offset: l.Offset}]++
	}
	return held
}

// Regression: a record that could not be encoded (an Avro double NaN)
// made the sink return at once; the records after it were never written,
// those before it sat unflushed, and the engine acked the whole batch.
func TestFileSinkWritesTheRestOfABatchAroundABadRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.jsonl")
	s, err := NewSink(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(t.Context())
	batch := conformance.Spread("t", 0, []bool{false, false, true, false, false}, func(rec *connector.Record, bad bool) {
		rec.Fields = map[string]any{"price": 2.5}
		if bad {
			rec.Fields["price"] = math.NaN()
		}
	})
	err = s.Write(t.Context(), batch)
	var be *connector.BatchError
	if !errors.As(err, &be) || len(be.Failed) != 1 || be.Failed[0].Record != batch[2] || len(be.NotWritten) != 0 {
		t.Fatalf("Write = %v; want record 2 alone rejected and the rest durable", err)
	}
	// Read without closing: durable means in the file now.
	if held := heldLines(t, path); len(held) != 4 || held[conformance.KeyOf(batch[2])] != 0 {
		t.Fatalf("file holds %v; want the 4 good records", held)
	}
}
