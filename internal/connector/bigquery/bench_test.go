package bigquery

import (
	"context"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/bqemu"
	"github.com/sluice-dev/sluice/internal/connector"
)

// benchSchema is a 20-field Avro-like record.
var benchSchema = func() *connector.Schema {
	s := &connector.Schema{ID: 1, Name: "com.example.Wide"}
	types := []connector.FieldType{connector.TypeInt, connector.TypeString, connector.TypeFloat, connector.TypeBool, connector.TypeTimestamp}
	for i := range 20 {
		f := connector.Field{Name: fmt.Sprintf("f%02d", i), Type: types[i%len(types)]}
		if i == 0 {
			f.Name = "id"
		}
		if i == 19 {
			f.Type, f.Precision, f.Scale = connector.TypeDecimal, 12, 2
		}
		s.Fields = append(s.Fields, f)
	}
	return s
}()

func benchRecords(first, n, tables int) []*connector.Record {
	at := time.Date(2025, 9, 23, 0, 0, 0, 0, time.UTC)
	out := make([]*connector.Record, n)
	for i := range n {
		id := first + i
		f := make(map[string]any, 20)
		for j, fd := range benchSchema.Fields {
			switch fd.Type {
			case connector.TypeInt:
				f[fd.Name] = int64(id + j)
			case connector.TypeString:
				f[fd.Name] = fmt.Sprintf("value %d of field %d", id, j)
			case connector.TypeFloat:
				f[fd.Name] = float64(id) / 3
			case connector.TypeBool:
				f[fd.Name] = id%2 == 0
			case connector.TypeTimestamp:
				f[fd.Name] = at.Add(time.Duration(id) * time.Millisecond)
			case connector.TypeDecimal:
				f[fd.Name] = big.NewRat(int64(id), 100)
			}
		}
		out[i] = &connector.Record{Topic: fmt.Sprintf("t%04d", id%tables), Offset: int64(id), Fields: f, Schema: benchSchema}
	}
	return out
}

// BenchmarkSinkWrite measures rows/s appended into the emulator for a
// 20-field record spread over 1, 100 and 1,000 tables, by connection
// bound, with the peak TCP connections and AppendRows streams the
// emulator saw. One op is a 10,000-record batch; two writers run at once,
// as two consumers of a pipeline do.
//
//	go test -run '^$' -bench SinkWrite -benchtime 20x ./internal/connector/bigquery/
func BenchmarkSinkWrite(b *testing.B) {
	const batch, writers = 10000, 2
	for _, tables := range []int{1, 100, 1000} {
		for _, conns := range []int{1, 2, 4, 8} {
			b.Run(fmt.Sprintf("tables=%d/max_connections=%d", tables, conns), func(b *testing.B) {
				e, addrs := startEmulator(b, bqemu.Faults{})
				cfg := sinkConfig(addrs, "{{.Topic}}")
				cfg.MaxConnections = conns
				s := newSink(b, cfg)
				ctx := context.Background()
				if err := s.Write(ctx, benchRecords(0, max(tables, 100), tables)); err != nil { // create the tables
					b.Fatal(err)
				}
				recs := make([][]*connector.Record, b.N)
				for i := range b.N {
					recs[i] = benchRecords((i+1)*batch, batch, tables)
				}
				e.ResetStats()
				b.ResetTimer()
				var wg sync.WaitGroup
				next := make(chan []*connector.Record)
				for range writers {
					wg.Go(func() {
						for r := range next {
							if err := s.Write(ctx, r); err != nil {
								b.Error(err)
							}
						}
					})
				}
				for _, r := range recs {
					next <- r
				}
				close(next)
				wg.Wait()
				b.StopTimer()
				st := e.Stats()
				if st.RowsAppended != int64(b.N*batch) {
					b.Fatalf("%d rows appended, want %d", st.RowsAppended, b.N*batch)
				}
				b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "rows/s")
				b.ReportMetric(float64(st.PeakConnections), "peak_tcp")
				b.ReportMetric(float64(st.PeakStreams), "peak_streams")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}
