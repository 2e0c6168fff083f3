package pubsub

import (
	"context"
	"fmt"
	"testing"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/connector/conformance"
)

// The Pub/Sub sink against Google's pstest. Bad records are of two kinds:
// a header that is not UTF-8 (an attribute must be text) and an empty
// message (Pub/Sub refuses a message with neither data nor attributes).
func TestPubSubSinkConformance(t *testing.T) {
	conformance.Run(t, func(t *testing.T) conformance.Target {
		srv := pstest.NewServerWithAddress("127.0.0.1:0")
		t.Cleanup(func() { srv.Close() })
		if _, err := srv.GServer.CreateTopic(context.Background(), &pubsubpb.Topic{Name: "projects/conf/topics/out"}); err != nil {
			t.Fatal(err)
		}
		s, err := NewSink(context.Background(), config.PubSubSink{Project: "conf", Topic: "out", EmulatorHost: srv.Addr, OrderingKey: "key"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		next := int64(0)
		return conformance.Target{
			Sink: conformance.Owned(t, s),
			Records: func(t *testing.T, bad []bool) []*connector.Record {
				n := 0
				recs := conformance.Spread("conf", next, bad, func(rec *connector.Record, bad bool) {
					rec.Key = fmt.Appendf(nil, "k%d", rec.Partition)
					rec.Value = []byte(conformance.KeyOf(rec).String())
					if bad {
						if n%2 == 0 {
							rec.Headers = []connector.Header{{Key: "h", Value: []byte{0xff, 0xfe}}}
						} else {
							rec.Value = []byte{}
						}
						n++
					}
				})
				next += int64(len(bad))
				return recs
			},
			Held: func(t *testing.T) map[conformance.Key]int {
				held := map[conformance.Key]int{}
				for _, m := range srv.Messages() {
					var k conformance.Key
					if _, err := fmt.Sscanf(string(m.Data), "%d@%d", &k.Partition, &k.Offset); err != nil {
						t.Fatalf("message %q is not one the suite wrote", m.Data)
					}
					held[k]++
				}
				return held
			},
		}
	})
}
