package config

import (
	"strings"
	"testing"
)

// TestConsumerPropertiesOutsideKafkasRangesAreRefused: the admin API took
// {"session.timeout.ms": 1}, and the consumer never came back. Every value
// Kafka or the client would refuse is now refused by name, up front.
func TestConsumerPropertiesOutsideKafkasRangesAreRefused(t *testing.T) {
	for _, tc := range []struct {
		props map[string]any
		name  string // the property the problem names; "" when accepted
		want  string
	}{
		{map[string]any{"session.timeout.ms": 1}, "session.timeout.ms", "between 6000 and 1800000"},
		{map[string]any{"session.timeout.ms": 1800001}, "session.timeout.ms", "between 6000 and 1800000"},
		{map[string]any{"session.timeout.ms": 6000}, "", ""},
		{map[string]any{"heartbeat.interval.ms": 50000}, "heartbeat.interval.ms", "less than session.timeout.ms (45000)"},
		{map[string]any{"session.timeout.ms": 6000, "heartbeat.interval.ms": 6000}, "heartbeat.interval.ms", "less than session.timeout.ms (6000)"},
		{map[string]any{"session.timeout.ms": 6000, "heartbeat.interval.ms": 500}, "", ""},
		{map[string]any{"max.poll.records": 0}, "max.poll.records", "at least 1"},
		{map[string]any{"fetch.max.bytes": 0}, "fetch.max.bytes", "between 1 and"},
		{map[string]any{"fetch.max.bytes": 200 << 20}, "fetch.max.bytes", "between 1 and 104857600"},
		{map[string]any{"max.partition.fetch.bytes": 0}, "max.partition.fetch.bytes", "at least 1"},
		{map[string]any{"fetch.max.wait.ms": 1}, "fetch.max.wait.ms", "between 10 and"},
		{map[string]any{"metadata.max.age.ms": 100}, "metadata.max.age.ms", "between 5000 and 3600000"},
		{map[string]any{"client.id": "a\nb"}, "client.id", "control characters"},
		{map[string]any{"client.id": "a\x00b"}, "client.id", "control characters"},
		{map[string]any{"client.id": strings.Repeat("x", 257)}, "client.id", "at most 256"},
		{map[string]any{"group.instance.id": "a\rb"}, "group.instance.id", "control characters"},
		{map[string]any{"client.id": "films-ü"}, "", ""},
	} {
		_, probs := ParseConsumerProperties(tc.props)
		if tc.name == "" {
			if len(probs) > 0 {
				t.Errorf("%v: refused: %v", tc.props, probs)
			}
			continue
		}
		if len(probs) != 1 || probs[0].Name != tc.name || !strings.Contains(probs[0].Problem, tc.want) {
			t.Errorf("%v: problems %+v, want one naming %s with %q", tc.props, probs, tc.name, tc.want)
		}
	}
}

func TestSASLSettingsAreCheckedTogether(t *testing.T) {
	for _, tc := range []struct {
		sasl string
		want []string // problems expected, "" none
	}{
		{`{mechanism: PLAIN, username: u, password: p}`, nil},
		{`{mechanism: OAUTHBEARER, provider: google}`, nil},
		{`{mechanism: OAUTHBEARER, provider: google, credentials_file: sa.json}`, nil},
		{`{mechanism: OAUTHBEARER, provider: oidc, token_url: "https://idp/token", client_id: c, client_secret: s, scopes: [kafka]}`, nil},
		{`{mechanism: OAUTHBEARER}`, []string{`source.kafka.sasl.provider: "" is not one of google, oidc`}},
		{`{mechanism: OAUTHBEARER, provider: oidc, token_url: "not a url"}`, []string{"source.kafka.sasl.token_url: \"not a url\" is not an http(s) URL", "source.kafka.sasl.client_id: is required", "source.kafka.sasl.client_secret: is required"}},
		{`{mechanism: OAUTHBEARER, provider: google, username: u, token_url: "https://x"}`, []string{"source.kafka.sasl.username: OAUTHBEARER takes no username", "source.kafka.sasl.provider: google takes credentials_file"}},
		{`{mechanism: PLAIN, username: u, password: p, provider: google}`, []string{"source.kafka.sasl.provider: is only for mechanism OAUTHBEARER"}},
		{`{mechanism: GSSAPI, username: u, password: p}`, []string{`source.kafka.sasl.mechanism: "GSSAPI" is not one of`}},
	} {
		_, err := Parse([]byte("name: s\nsource: {kafka: {brokers: [b:1], topics: [t], group: g, sasl: "+tc.sasl+"}}\nsink: {file: {path: x}}\n"), func(string) (string, bool) { return "", false })
		got := ""
		if err != nil {
			got = err.Error()
		}
		if len(tc.want) == 0 && got != "" {
			t.Errorf("%s: refused: %s", tc.sasl, got)
		}
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: problems %q lack %q", tc.sasl, got, w)
			}
		}
	}
}
