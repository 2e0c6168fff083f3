package sql_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/codec"
	"github.com/sluice-dev/sluice/internal/connector"
	sqlsink "github.com/sluice-dev/sluice/internal/connector/sql"
)

// jsonFields is the field visitor assembly.Build gives a JSON pipeline's
// SQL sink, or nil (the engine decodes) when raw is false.
func jsonFields(t *testing.T, raw bool) connector.FieldVisitor {
	if !raw {
		return nil
	}
	dec, err := codec.NewDecoder(codec.Options{Value: codec.FormatJSON})
	if err != nil {
		t.Fatal(err)
	}
	return dec
}

// rawValues are JSON values as they arrive from Kafka: no Fields.
func rawValues(topic string, offset int64, values ...string) []*connector.Record {
	out := make([]*connector.Record, len(values))
	for i, v := range values {
		out[i] = &connector.Record{Topic: topic, Offset: offset + int64(i), Timestamp: time.UnixMilli(1700000000000), Value: []byte(v)}
	}
	return out
}

// With JSON values the sink parses them itself (no map per record). It
// must write the same rows and reject the same records, with the same
// messages, as when the pipeline's decoder has decoded them.
func TestSQLParsesJSONValuesLikeTheDecoder(t *testing.T) {
	values := []string{
		`{"id":1,"name":"ok","price":1.5,"doc":{"a":[1,2]},"at":"2024-05-01T12:34:56Z"}`,
		`{"id":2,"name":"ok","price":"abc"}`,
		`{"id":3,"name":"much too long","price":1}`,
		`{"name":"no id","price":1}`,
		`{"id":5,`,
		`[5]`,
		`null`,
		``,
		`{"id":8,"id":9,"name":"dup"}`,
		`{"id":10,"extra":1,"name":"x\"y\u00e9"}`,
		` {"price":2 , "id":11} `,
		`{"id":12,"at":"yesterday"}`,
		`{"id":13,"name":"ok"} trailing`,
	}
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			d := openTestDB(t, kind)
			ctx := context.Background()
			pipe := uniqueName("p")
			results := map[bool][]string{}
			for _, raw := range []bool{false, true} {
				tbl := uniqueName("rawjson")
				d.dropAfter(t, pipe, tbl)
				d.exec(t, fmt.Sprintf("CREATE TABLE %s (id integer NOT NULL, name varchar(8), price numeric(6,2), doc text, at %s)", tbl, map[string]string{"postgres": "timestamptz", "mysql": "datetime(6)", "sqlite": "TIMESTAMP"}[kind]))
				cfg := d.cfg
				cfg.Table = tbl
				s, err := sqlsink.New(ctx, sqlsink.Options{Kind: d.kind, Config: cfg, Pipeline: pipe, Fields: jsonFields(t, raw), Logger: testLogger()})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close(context.Background()) })
				if got := s.(connector.FieldVisitorSink).VisitsFields(); got != raw {
					t.Fatalf("VisitsFields = %v, want %v", got, raw)
				}
				var recs []*connector.Record
				if raw {
					recs = rawValues("in", 100, values...)
				} else {
					// What assembly.Build gives a JSON pipeline otherwise.
					dec, err := codec.NewDecoder(codec.Options{Value: codec.FormatJSON})
					if err != nil {
						t.Fatal(err)
					}
					for i, v := range values {
						r := rawValues("in", 100+int64(i), v)[0]
						var re *connector.RecordError
						if err := dec.Decode(ctx, r); errors.As(err, &re) {
							// The engine routes it as bad input.
							results[raw] = append(results[raw], fmt.Sprintf("rejected %d: %s: %v", r.Offset, re.Reason, re.Err))
							continue
						} else if err != nil {
							t.Fatal(err)
						}
						recs = append(recs, r)
					}
				}
				err = s.Write(ctx, recs)
				var be *connector.BatchError
				if err != nil && !errors.As(err, &be) {
					t.Fatal(err)
				}
				if be != nil {
					for _, f := range be.Failed {
						results[raw] = append(results[raw], fmt.Sprintf("rejected %d: %s: %v", f.Record.Offset, f.Reason, strings.ReplaceAll(f.Err.Error(), tbl, "T")))
					}
				}
				results[raw] = append(results[raw], d.strings(t, fmt.Sprintf("SELECT id, name, price, doc FROM %s ORDER BY id", tbl))...)
				slices.Sort(results[raw])
			}
			if strings.Join(results[true], "\n") != strings.Join(results[false], "\n") {
				t.Fatalf("parsed by the sink:\n%s\n\ndecoded by the pipeline:\n%s", strings.Join(results[true], "\n"), strings.Join(results[false], "\n"))
			}
			if len(results[true]) < 10 {
				t.Fatalf("only %d results: %q", len(results[true]), results[true])
			}
		})
	}
}
