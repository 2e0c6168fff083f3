package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	kafkaconn "github.com/sluice-dev/sluice/internal/connector/kafka"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Regression (issue 11): a record with 2,000 fields under create_table and
// add_columns hit the database's column limit, which was retried forever:
// the partition stalled behind it and the table was left with 1,600 (988)
// columns. And a bad record over about 1 MB with on_error: dlq failed to
// produce to the dead-letter topic with MESSAGE_TOO_LARGE, also forever.
// Now the wide record goes where on_error says (on PostgreSQL it is also
// 1.2 MB, so its dead letter is cut to fit), the table keeps the columns
// of the good records, and the records after it arrive.
func TestSQLRecordWithTwoThousandFieldsDoesNotStallThePipeline(t *testing.T) {
	for _, tc := range []struct {
		kind, onError, delivery string
		fieldBytes              int // bytes of each field's value
	}{
		{"postgres", "dlq", "at_least_once", 600},
		{"postgres", "skip", "exactly_once", 1},
		{"mysql", "skip", "at_least_once", 1},
		{"sqlite", "dlq", "exactly_once", 1},
	} {
		t.Run(tc.kind+"/"+tc.delivery, func(t *testing.T) {
			d := openSQL(t, tc.kind)
			pipe, tbl := sqlName("wide"), sqlName("wide")
			d.cleanupSQL(t, pipe, tbl)
			c := startBroker(t)
			brokers := c.ListenAddrs()
			topic := pipe
			big := "4194304"
			resp, err := adminClient(t, brokers).CreateTopic(context.Background(), 1, 1, map[string]*string{"max.message.bytes": &big}, topic)
			if err == nil {
				err = resp.Err
			}
			if err != nil {
				t.Fatal(err)
			}
			produceN(t, brokers, topic, 0, 20)
			wide := wideJSON(20, 2000, tc.fieldBytes)
			cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerBatchMaxBytes(4<<20))
			if err != nil {
				t.Fatal(err)
			}
			err = cl.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Key: []byte("wide"), Value: []byte(wide)}).FirstErr()
			cl.Close()
			if err != nil {
				t.Fatal(err)
			}
			produceN(t, brokers, topic, 21, 20)

			conn := fmt.Sprintf("dsn: %q", d.dsn)
			if tc.kind == "sqlite" {
				conn = fmt.Sprintf("path: %q", d.path)
			}
			b, stop := runPipeline(t, fmt.Sprintf(`
name: %s
source:
  kafka: {brokers: [%s], topics: [%s], group: %s}
format: {value: json}
delivery: %s
on_error: %s
sink:
  %s: {%s, table: %s, create_table: true}
`, pipe, brokers[0], topic, pipe, tc.delivery, tc.onError, tc.kind, conn, tbl))
			eventually(t, 60*time.Second, "the 40 good rows", func() bool {
				n, err := d.tryCount("SELECT count(*) FROM " + tbl)
				return err == nil && n >= 40
			})
			if tc.onError == "dlq" {
				dead := sqlConsumeRecords(t, brokers, topic+".dlq", 1, 30*time.Second)
				r := dead[0]
				if sqlHeader(r, kafkaconn.HeaderOffset) != "20" || sqlHeader(r, kafkaconn.HeaderReason) != "too_many_columns" ||
					!strings.Contains(sqlHeader(r, kafkaconn.HeaderError), "max_columns") {
					t.Errorf("dead letter: offset %q, reason %q, error %q; want offset 20 rejected for too many columns",
						sqlHeader(r, kafkaconn.HeaderOffset), sqlHeader(r, kafkaconn.HeaderReason), sqlHeader(r, kafkaconn.HeaderError))
				}
				cut := sqlHeader(r, kafkaconn.HeaderTruncated) == "true"
				if tooBig := len(wide) > 1<<20; cut != tooBig || (cut && sqlHeader(r, kafkaconn.HeaderOriginalSize) != fmt.Sprint(len(wide))) {
					t.Errorf("dead letter of a %d-byte value: truncated %v, original size %q", len(wide), cut, sqlHeader(r, kafkaconn.HeaderOriginalSize))
				}
			} else {
				// The skip is counted when the sink's write returns, which
				// can be just after its rows became visible.
				eventually(t, 30*time.Second, "the wide record counted as skipped", func() bool {
					return b.Pipeline.Status().Skipped >= 1
				})
				if st := b.Pipeline.Status(); st.Skipped != 1 {
					t.Errorf("skipped %d, want 1", st.Skipped)
				}
			}
			if err := stop(); err != nil {
				t.Fatalf("the pipeline stopped with %v", err)
			}
			if n := d.count(t, "SELECT count(*) FROM "+tbl); n != 40 {
				t.Fatalf("rows = %d, want 40", n)
			}
			// id, name, price and the five metadata columns: nothing of the
			// wide record.
			q := fmt.Sprintf("SELECT count(*) FROM information_schema.columns WHERE table_name = '%s'", tbl)
			if tc.kind == "sqlite" {
				q = fmt.Sprintf("SELECT count(*) FROM pragma_table_info('%s')", tbl)
			}
			if n := d.count(t, q); n != 8 {
				t.Fatalf("table has %d columns, want 8", n)
			}
		})
	}
}

// wideJSON is {"id":id,"f0":"xx..",...} with n fields of size bytes each.
func wideJSON(id, n, size int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `{"id":%d`, id)
	v := strings.Repeat("x", size)
	for i := range n {
		fmt.Fprintf(&b, `,"f%d":"%s"`, i, v)
	}
	b.WriteString("}")
	return b.String()
}
