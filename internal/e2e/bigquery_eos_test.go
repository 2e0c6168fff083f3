package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	bq "cloud.google.com/go/bigquery"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"

	"github.com/sluice-dev/sluice/internal/bqemu"
)

// TestBigQueryExactlyOnceSIGKILLsAvroTwentyTables: `sluice run` with
// delivery: exactly_once writes Avro records into 20 tables named from the
// record and is killed with SIGKILL mid-stream, then restarted; in the end
// every record is in BigQuery exactly once, counted by its
// (_sluice_topic, _sluice_partition, _sluice_offset) through
// tabledata.list, as a user would check it. The JSON case takes the
// sink's direct path (values written into proto rows from their bytes,
// the template decoding only .Value.store) under the same kills.
func TestBigQueryExactlyOnceSIGKILLsAvroTwentyTables(t *testing.T) {
	t.Run("avro", func(t *testing.T) { bqExactlyOnceUnderKills(t, "avro") })
	t.Run("json", func(t *testing.T) { bqExactlyOnceUnderKills(t, "json") })
}

func bqExactlyOnceUnderKills(t *testing.T, format string) {
	n, kills := 10000, 2
	if longRun() {
		n, kills = 100000, 5
	}
	const tables = 20
	began := time.Now()
	bin := buildSluice(t)
	t.Logf("built sluice in %v", time.Since(began).Round(time.Millisecond))
	e, addrs := startBQEmulator(t, bqemu.Faults{})
	brokers := startBroker(t).ListenAddrs()
	createTopic(t, brokers, "eos.purchases", 6)
	formatYAML := "{value: json}"
	if format == "avro" {
		regURL, _ := startRegistry(t, "127.0.0.1:0", "")
		bqProduceAvro(t, brokers, regURL, "eos.purchases", fmt.Sprintf(bqPurchaseAvro, ""), n, 0,
			func(i int) map[string]any { return bqPurchaseFields(i, tables) })
		formatYAML = fmt.Sprintf("{value: avro-confluent, schema_registry: {url: %q}}", regURL)
	} else {
		bqProduceJSON(t, brokers, "eos.purchases", 0, n, func(i int) string {
			return fmt.Sprintf(`{"id":%d,"store":"store-%04d","customer":"c%d","amount":%d.%02d,"currency":"EUR",`+
				`"requested_at":%q,"items":[{"sku":"sku-%d","qty":%d}]}`,
				i, i%tables, i%977, i%100000/100, i%100, time.UnixMilli(1758600000000+int64(i)).UTC().Format(time.RFC3339Nano), i%50, 1+i%3)
		})
	}

	file := filepath.Join(t.TempDir(), "p.yaml")
	yaml := fmt.Sprintf(`
name: eos-bq
source:
  kafka: {brokers: [%s], topics: [eos.purchases], group: eos-bq, consumers: 2,
          properties: {session.timeout.ms: 6000, heartbeat.interval.ms: 500, rebalance.timeout.ms: 5000}}
format: %s
delivery: exactly_once
batch: {max_records: 1000, linger: 200ms}
`, brokers[0], formatYAML) + bqSinkYAML(addrs, "purchases-{{.Value.store}}", 4, bqCreate)
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := runKilled(t, bin, file, kills, int64(n), "rows appended", func() int64 { return e.Stats().RowsAppended })
	t.Logf("killed %d times by %v", kills, time.Since(began).Round(time.Millisecond))
	bqWaitCommitted(t, brokers, "eos-bq", "eos.purchases", 3*time.Minute)
	t.Logf("every offset committed at %v", time.Since(began).Round(time.Millisecond))
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("sluice run after SIGTERM: %v", err)
	}

	held, byTable := bqCountByOffset(t, addrs)
	if len(byTable) != tables {
		t.Errorf("rows in %d tables, want %d", len(byTable), tables)
	}
	ends := endOffsets(t, adminClient(t, brokers), "eos.purchases")
	total := 0
	for p, end := range ends {
		for o := range end {
			k := bqOffsetKey{"eos.purchases", p, o}
			switch c := held[k]; {
			case c == 0:
				t.Errorf("record %d@%d is missing", p, o)
			case c > 1:
				t.Errorf("record %d@%d is held %d times", p, o, c)
			}
			delete(held, k)
			total++
		}
	}
	if total != n || len(held) != 0 {
		t.Fatalf("%d records in the topic (want %d), %d rows for no record", total, n, len(held))
	}
	t.Logf("%d %s records into %d tables, %d SIGKILLs: every row present once (rows appended %d, %d of them in streams never committed)",
		n, format, tables, kills, e.Stats().RowsAppended, e.Stats().RowsAppended-int64(n))
}

type bqOffsetKey struct {
	topic     string
	partition int32
	offset    int64
}

// bqCountByOffset reads every table of the dataset through tabledata.list
// (Google's client, Table.Read) and counts rows by their Kafka position.
func bqCountByOffset(t *testing.T, addrs bqemu.Addrs) (map[bqOffsetKey]int, map[string]int) {
	t.Helper()
	ctx := context.Background()
	c, err := bq.NewClient(ctx, bqProject, option.WithEndpoint("http://"+addrs.REST), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	held, byTable := map[bqOffsetKey]int{}, map[string]int{}
	tit := c.Dataset(bqDataset).Tables(ctx)
	for {
		tbl, err := tit.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			t.Fatalf("listing tables: %v", err)
		}
		rit := tbl.Read(ctx)
		for {
			var row map[string]bq.Value
			err := rit.Next(&row)
			if errors.Is(err, iterator.Done) {
				break
			}
			if err != nil {
				t.Fatalf("reading %s: %v", tbl.TableID, err)
			}
			topic, _ := row["_sluice_topic"].(string)
			p, _ := row["_sluice_partition"].(int64)
			o, okO := row["_sluice_offset"].(int64)
			if topic == "" || !okO {
				t.Fatalf("row of %s without its Kafka position: %v", tbl.TableID, row)
			}
			held[bqOffsetKey{topic, int32(p), o}]++
			byTable[tbl.TableID]++
		}
	}
	return held, byTable
}

// runKilled starts `sluice run file` and SIGKILLs it kills times, each
// time once progress() (out of n) passed the next step, then starts it
// once more and returns that last process, running.
func runKilled(t *testing.T, bin, file string, kills int, n int64, what string, progress func() int64) *exec.Cmd {
	t.Helper()
	for k := range kills {
		cmd := startSluice(t, bin, file)
		target := n * int64(k+1) / int64(kills+1)
		eventually(t, 2*time.Minute, fmt.Sprintf("%d %s before kill %d", target, what, k+1), func() bool {
			return progress() >= target
		})
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
	}
	return startSluice(t, bin, file)
}
