package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The timestamp policy reaches the SQL sink's _timestamp column: with
// policy field the engine decodes values even though the PostgreSQL sink
// would otherwise take them undecoded, and every row carries its field's
// time; a record without the field goes to no row (skipped as bad input).
// The pipeline's status then has a watermark at the newest event time.
func TestTimestampFieldPolicyFillsThePostgresTimestampColumn(t *testing.T) {
	d := openSQL(t, "postgres")
	pipe := sqlName("evt")
	stg := pipe + "_stg"
	d.exec(t, fmt.Sprintf(`CREATE TABLE %s (id bigint, _timestamp timestamptz)`, stg))
	d.cleanupSQL(t, pipe, "TABLE "+stg)
	c := startBroker(t)
	brokers := c.ListenAddrs()
	createTopic(t, brokers, pipe, 3)
	b, stop := runPipeline(t, fmt.Sprintf(`
name: %[1]s
source:
  kafka: {brokers: [%[2]s], topics: [%[1]s], group: %[1]s}
format: {value: json}
timestamp: {policy: field, field: meta.at, format: unix}
on_error: skip
sink:
  postgres: {dsn: "%[3]s", staging_table: %[4]s}
`, pipe, brokers[0], d.dsn, stg))
	const n = 300
	base := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	produceAll(t, brokers, nil, 0, n, func(i int) *kgo.Record {
		return &kgo.Record{Topic: pipe, Value: []byte(fmt.Sprintf(`{"id":%d,"meta":{"at":%d}}`, i, base.Unix()+int64(i)))}
	})
	produceAll(t, brokers, nil, 0, 1, func(int) *kgo.Record { return &kgo.Record{Topic: pipe, Value: []byte(`{"id":-1}`)} })
	eventually(t, 30*time.Second, "every record written or skipped", func() bool {
		st := b.Pipeline.Status()
		return st.RecordsOut == n && st.Skipped == 1
	})
	q := fmt.Sprintf(`SELECT count(*) FROM %s WHERE _timestamp = to_timestamp(%d + id)`, stg, base.Unix())
	if got := d.count(t, q); got != n {
		t.Fatalf("%d of %d rows carry their field's time in _timestamp", got, n)
	}
	st := b.Pipeline.Status()
	if st.Watermark == nil || st.Watermark.After(base.Add((n-1)*time.Second)) || st.Watermark.Before(base) {
		t.Fatalf("watermark %v; want one of the records' event times, at most %v", st.Watermark, base.Add((n-1)*time.Second))
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
