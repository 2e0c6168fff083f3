package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	bqapi "google.golang.org/api/bigquery/v2"

	"github.com/sluice-dev/sluice/internal/bqemu"
)

// bqPaymentsWithBadRows makes table payments (id REQUIRED, amount
// NUMERIC, note) and produces n JSON records to topic payments (3
// partitions), 3 in 10 of them bad: a NUMERIC out of range and a missing
// id (row errors inside an append) and a value that fits no NUMERIC
// (refused before sending). It returns the bad values.
func bqPaymentsWithBadRows(t *testing.T, n int) (*bqemu.Emulator, bqemu.Addrs, []string, map[string]bool) {
	t.Helper()
	e, addrs := startBQEmulator(t, bqemu.Faults{})
	ctx := context.Background()
	if err := e.CreateDataset(ctx, bqProject, bqDataset); err != nil {
		t.Fatal(err)
	}
	if err := e.CreateTable(ctx, bqProject, bqDataset, "payments", []*bqapi.TableFieldSchema{
		{Name: "id", Type: "INT64", Mode: "REQUIRED"},
		{Name: "amount", Type: "NUMERIC"},
		{Name: "note", Type: "STRING"},
	}); err != nil {
		t.Fatal(err)
	}
	brokers := startBroker(t).ListenAddrs()
	createTopic(t, brokers, "payments", 3)
	bad := map[string]bool{}
	bqProduceJSON(t, brokers, "payments", 0, n, func(i int) string {
		var v string
		switch i % 10 {
		case 3:
			v = fmt.Sprintf(`{"id":%d,"amount":1e40}`, i) // beyond NUMERIC's range: a row error
		case 5:
			v = fmt.Sprintf(`{"amount":%d}`, i) // the REQUIRED id missing: a row error
		case 7:
			v = fmt.Sprintf(`{"id":%d,"amount":"lots"}`, i) // fits no NUMERIC: refused before sending
		default:
			return fmt.Sprintf(`{"id":%d,"amount":%d.5,"note":"ok"}`, i, i)
		}
		bad[v] = true
		return v
	})
	return e, addrs, brokers, bad
}

// TestBigQueryRejectedRowsGoToTheErrorTableWhileGoodRowsLand: with
// dlq.bigquery, the rows BigQuery refuses inside an append (NUMERIC out
// of range, a REQUIRED column missing) and the values that fit no column
// become rows of payments_error_records with the raw payload, the reason
// and the Kafka coordinates, and the good rows of the same appends land
// once each.
func TestBigQueryRejectedRowsGoToTheErrorTableWhileGoodRowsLand(t *testing.T) {
	const n = 200
	e, addrs, brokers, values := bqPaymentsWithBadRows(t, n)
	ctx := context.Background()
	r := bqRunPipeline(t, fmt.Sprintf(`
name: payments
source:
  kafka: {brokers: [%s], topics: [payments], group: payments-bq}
format: {value: json}
on_error: dlq
dlq: {bigquery: {table: "{{.Table}}_error_records"}}
`, brokers[0])+bqSinkYAML(addrs, "payments", 2, ""))
	bqWaitCommitted(t, brokers, "payments-bq", "payments", 2*time.Minute)

	errRows, err := e.Rows(ctx, bqProject, bqDataset, "payments_error_records")
	if err != nil {
		t.Fatalf("reading the error table: %v", err)
	}
	if len(errRows) != len(values) {
		t.Fatalf("%d rows in payments_error_records, want %d", len(errRows), len(values))
	}
	seen := map[string]bool{}
	for _, row := range errRows {
		payload, _ := row["payloadBytes"].([]byte)
		v := string(payload)
		if !values[v] || seen[v] || row["payloadString"] != v {
			t.Fatalf("error row with payload %q (string %q): not one of the bad records, or twice", v, row["payloadString"])
		}
		seen[v] = true
		reason, _ := row["errorReason"].(string)
		checkBadPayment(t, "error table", v, reason, fmt.Sprint(row["errorMessage"]))
		if row["topic"] != "payments" || row["destinationTable"] != "payments" || row["pipeline"] != "payments" {
			t.Fatalf("error row %s without its origin: %v", v, row)
		}
		if key, _ := row["key"].([]byte); len(key) == 0 {
			t.Fatalf("error row %s without the record's key", v)
		}
		if _, ok := row["offset"].(int64); !ok || row["timestamp"] == nil || row["recordTimestamp"] == nil {
			t.Fatalf("error row %s without offset or timestamps: %v", v, row)
		}
	}
	good, err := e.Rows(ctx, bqProject, bqDataset, "payments")
	if err != nil {
		t.Fatal(err)
	}
	ids := map[int64]int{}
	for _, row := range good {
		ids[row["id"].(int64)]++
	}
	if len(ids) != n-len(values) {
		t.Fatalf("%d rows landed, want the %d good ones", len(ids), n-len(values))
	}
	for id, c := range ids {
		if id%10 == 3 || id%10 == 5 || id%10 == 7 || c != 1 {
			t.Fatalf("id %d landed %d times", id, c)
		}
	}
	if st := r.p.Status(); st.DeadLettered != int64(len(values)) || st.Error != "" {
		t.Fatalf("pipeline: %d dead-lettered, error %q", st.DeadLettered, st.Error)
	}
}
