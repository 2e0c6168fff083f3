package admin

import (
	"testing"

	"github.com/sluice-dev/sluice/internal/config"
)

// TestMaxConsumersDefaultAgreesWithConfig: validate --print shows
// admin.max_consumers from config; the server's guard for callers that
// leave Options.MaxConsumers zero must cap at the same number.
func TestMaxConsumersDefaultAgreesWithConfig(t *testing.T) {
	f, err := config.Parse([]byte(`
name: x
source: {kafka: {brokers: [b:9092], topics: [t], group: g}}
sink: {file: {path: out}}
admin: {listen: "127.0.0.1:0"}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if f.Admin.MaxConsumers != DefaultMaxConsumers {
		t.Fatalf("config defaults admin.max_consumers to %d, the server to %d", f.Admin.MaxConsumers, DefaultMaxConsumers)
	}
}
