package bigquery

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/sluice-dev/sluice/internal/bqemu"
	"github.com/sluice-dev/sluice/internal/codec"
	"github.com/sluice-dev/sluice/internal/connector"
)

// emulatorChildEnv makes TestEmulatorChildProcess serve an emulator (for
// BenchmarkSinkCPU, which runs it in a process of its own).
const emulatorChildEnv = "SLUICE_BQEMU_CHILD"

// TestEmulatorChildProcess is not a test: run by BenchmarkSinkCPU with
// SLUICE_BQEMU_CHILD=1, it serves an emulator, prints its addresses as
// JSON and stops when its standard input closes.
func TestEmulatorChildProcess(t *testing.T) {
	if os.Getenv(emulatorChildEnv) == "" {
		t.Skip("the benchmark's emulator process")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e, err := bqemu.New(ctx, bqemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	addrs, err := e.Start(ctx, "127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	json.NewEncoder(os.Stdout).Encode(addrs)
	io.Copy(io.Discard, os.Stdin)
}

// emulatorProcess starts the emulator in a child process.
func emulatorProcess(b *testing.B) bqemu.Addrs {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestEmulatorChildProcess$", "-test.v=false")
	cmd.Env = append(os.Environ(), emulatorChildEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	var addrs bqemu.Addrs
	if err := json.NewDecoder(bufio.NewReader(out)).Decode(&addrs); err != nil {
		b.Fatalf("reading the emulator's addresses: %v", err)
	}
	return addrs
}

func emulatorStats(b *testing.B, addrs bqemu.Addrs) bqemu.Stats {
	b.Helper()
	resp, err := http.Get("http://" + addrs.REST + "/emulator/stats")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var st bqemu.Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		b.Fatal(err)
	}
	return st
}

// wide20Avro is BenchmarkSinkWrite's 20-field record as Avro.
var wide20Avro = func() string {
	types := []string{`"long"`, `"string"`, `"double"`, `"boolean"`, `{"type":"long","logicalType":"timestamp-micros"}`}
	var fields []string
	for i := range 20 {
		name, typ := fmt.Sprintf("f%02d", i), types[i%len(types)]
		if i == 0 {
			name = "id"
		}
		if i == 19 {
			typ = `{"type":"bytes","logicalType":"decimal","precision":12,"scale":2}`
		}
		fields = append(fields, fmt.Sprintf(`{"name":%q,"type":%s}`, name, typ))
	}
	return `{"type":"record","name":"Wide","namespace":"com.example","fields":[` + strings.Join(fields, ",") + `]}`
}()

func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// BenchmarkSinkCPU measures the sink's own cost, apart from the
// emulator's: the emulator runs in a child process, and the benchmark
// reports this process's CPU seconds (decoding, encoding, the Storage
// Write client) for SLUICE_BENCH_RECORDS (default 1,000,000) 20-field
// Avro records in Confluent wire format, into 1, 100 and 1,000 tables,
// through the map path (decode to a map, then a dynamic proto message)
// and the direct path (Avro bytes straight into proto rows), at least
// once, and through the direct path exactly once (PENDING streams,
// finalized and committed per table per batch); and the same records as
// JSON objects (timestamps as RFC 3339 strings, the decimal as a number:
// STRING and FLOAT columns once inferred) through the map path
// ("json-map") and straight from the bytes ("json-direct"). Batches of 10,000 (SLUICE_BENCH_BATCH sets another
// size: with many tables, a batch's rows per table is what a write
// costs, see BENCHMARKS.md), two
// writers each owning a partition (as two consumers do), max_connections
// 4. SLUICE_BENCH_TABLES (e.g. "1000") and SLUICE_BENCH_MODES (e.g.
// "direct,eos") pick some of the cases. Run it once:
//
//	go test -run '^$' -bench SinkCPU -benchtime 1x ./internal/connector/bigquery/
func BenchmarkSinkCPU(b *testing.B) {
	n := 1000000
	if s := os.Getenv("SLUICE_BENCH_RECORDS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	batch, writers := 10000, 2
	if s := os.Getenv("SLUICE_BENCH_BATCH"); s != "" {
		batch, _ = strconv.Atoi(s)
	}
	reg := srfake.New()
	b.Cleanup(reg.Close)
	opts := codec.Options{Value: codec.FormatAvroConfluent, SchemaRegistry: codec.RegistryOptions{URL: reg.URL()}}
	enc, err := codec.NewEncoder(opts, wide20Avro)
	if err != nil {
		b.Fatal(err)
	}
	values := make([][]byte, n)
	jsonValues := make([][]byte, n)
	jsonDec, err := codec.NewDecoder(codec.Options{Value: codec.FormatJSON})
	if err != nil {
		b.Fatal(err)
	}
	at := time.Date(2025, 9, 23, 0, 0, 0, 0, time.UTC)
	for i := range values {
		f := make(map[string]any, 20)
		for j := range 20 {
			name := fmt.Sprintf("f%02d", j)
			if j == 0 {
				name = "id"
			}
			switch {
			case j == 19:
				f[name] = big.NewRat(int64(i), 100)
			case j%5 == 0:
				f[name] = int64(i + j)
			case j%5 == 1:
				f[name] = fmt.Sprintf("value %d of field %d", i, j)
			case j%5 == 2:
				f[name] = float64(i) / 3
			case j%5 == 3:
				f[name] = i%2 == 0
			default:
				f[name] = at.Add(time.Duration(i) * time.Millisecond)
			}
		}
		if values[i], err = enc.Encode(context.Background(), "wide", &connector.Record{Fields: f}); err != nil {
			b.Fatal(err)
		}
		// As JSON, numbers that may be whole carry a fraction: a table
		// inferred from "0" would have INTEGER columns.
		for j := 2; j < 19; j += 5 {
			f[fmt.Sprintf("f%02d", j)] = json.Number(strconv.FormatFloat(float64(i)/3, 'f', 6, 64))
		}
		f["f19"] = json.Number(fmt.Sprintf("%d.%02d", i/100, i%100))
		if jsonValues[i], err = json.Marshal(jsonValue(f)); err != nil {
			b.Fatal(err)
		}
	}
	for _, tables := range benchList("SLUICE_BENCH_TABLES", []int{1, 100, 1000}) {
		for _, mode := range benchList("SLUICE_BENCH_MODES", []string{"map", "direct", "eos", "json-map", "json-direct"}) {
			b.Run(fmt.Sprintf("tables=%d/%s", tables, mode), func(b *testing.B) {
				addrs := emulatorProcess(b)
				dec, err := codec.NewDecoder(opts)
				if err != nil {
					b.Fatal(err)
				}
				o := Options{Config: sinkConfig(addrs, "{{.Topic}}"), Pipeline: b.Name(), Logger: testLogger(), ExactlyOnce: mode == "eos"}
				switch mode {
				case "direct", "eos":
					o.Fields = dec
				case "json-direct":
					o.JSON = jsonDec
				case "json-map":
					dec = jsonDec
				}
				s, err := New(context.Background(), o)
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close(context.Background())
				topics := make([]string, tables) // a consumer's records share their topic's name
				for i := range topics {
					topics[i] = fmt.Sprintf("t%04d", i)
				}
				records := func(from, to int, partition int32) []*connector.Record {
					out := make([]*connector.Record, 0, to-from)
					for i := from; i < to; i++ {
						v := values[i]
						if strings.HasPrefix(mode, "json") {
							v = jsonValues[i]
						}
						out = append(out, &connector.Record{Topic: topics[i%tables], Partition: partition, Offset: int64(i), Value: v})
					}
					return out
				}
				write := func(recs []*connector.Record) {
					if mode == "map" || mode == "json-map" {
						for _, r := range recs {
							if err := dec.Decode(context.Background(), r); err != nil {
								b.Error(err)
							}
						}
					}
					if err := s.Write(context.Background(), recs); err != nil {
						b.Error(err)
					}
				}
				warm := min(n, max(tables, 100))
				write(records(0, warm, 0)) // create the tables
				for range b.N {
					cpu0, t0 := cpuSeconds(), time.Now()
					// Writer w owns partition w and writes its batches in
					// offset order, as one consumer does.
					var wg sync.WaitGroup
					for w := range writers {
						wg.Go(func() {
							for from := warm + w*batch; from < n; from += writers * batch {
								write(records(from, min(from+batch, n), int32(w)))
							}
						})
					}
					wg.Wait()
					cpu, wall := cpuSeconds()-cpu0, time.Since(t0).Seconds()
					st := emulatorStats(b, addrs)
					if st.RowsAppended != int64(n) {
						b.Fatalf("%d rows appended, want %d", st.RowsAppended, n)
					}
					rows := float64(n - warm)
					b.ReportMetric(rows/wall, "rows/s")
					b.ReportMetric(cpu, "sluice_cpu_s")
					b.ReportMetric(rows/cpu, "rows/cpu_s")
					b.ReportMetric(float64(st.PeakConnections), "peak_tcp")
					b.ReportMetric(float64(st.PeakStreams), "peak_streams")
					if st.PeakConnections > 4 {
						b.Errorf("peak %d TCP connections, over max_connections 4", st.PeakConnections)
					}
					b.ReportMetric(0, "ns/op")
				}
			})
		}
	}
}

// benchList is the comma-separated list in the environment variable env,
// or all.
func benchList[T int | string](env string, all []T) []T {
	v := os.Getenv(env)
	if v == "" {
		return all
	}
	var out []T
	for _, x := range all {
		if slices.Contains(strings.Split(v, ","), fmt.Sprint(x)) {
			out = append(out, x)
		}
	}
	return out
}
