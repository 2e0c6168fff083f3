package main

import (
	"slices"
	"strings"
	"testing"

	"cloud.google.com/go/pubsub/v2/pstest"
)

// sluice pubsub against the emulator: a topic, an ordered subscription,
// messages with an ordering key and attributes.
func TestPubSubCommandCreatesAndPublishes(t *testing.T) {
	srv := pstest.NewServerWithAddress("127.0.0.1:0")
	defer srv.Close()
	at := []string{"--emulator-host", srv.Addr, "--project", "p1"}
	for _, args := range [][]string{
		{"pubsub", "create-topic", "alerts"},
		{"pubsub", "create-subscription", "alerts-sluice", "--topic", "alerts", "--ordering"},
		{"pubsub", "publish", "alerts", "--ordering-key", "sensor-7", "--attr", "severity=critical", "--attr", "unit=C", "first", "second"},
	} {
		out, errOut, err := runCLI(t, append(args, at...)...)
		if err != nil {
			t.Fatalf("sluice %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
		}
		if !strings.Contains(out, "projects/p1/") {
			t.Fatalf("sluice %s printed %q", strings.Join(args, " "), out)
		}
	}
	msgs := srv.Messages()
	var data []string
	for _, m := range msgs {
		data = append(data, string(m.Data))
		if m.OrderingKey != "sensor-7" || m.Attributes["severity"] != "critical" || m.Attributes["unit"] != "C" || m.Topic != "projects/p1/topics/alerts" {
			t.Fatalf("message %+v", m)
		}
	}
	if !slices.Equal(data, []string{"first", "second"}) {
		t.Fatalf("published %q", data)
	}
	if _, _, err := runCLI(t, append([]string{"pubsub", "create-subscription", "x-sub"}, at...)...); err == nil || !strings.Contains(err.Error(), "--topic is required") {
		t.Fatalf("create-subscription without --topic: %v", err)
	}
}
