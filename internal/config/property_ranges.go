package config

import (
	"fmt"
	"sort"
	"time"
	"unicode"
)

// Kafka's own limits on consumer properties, checked before a client is
// built so a bad value is refused with its name (by validate, run and the
// admin API's PATCH) instead of a consumer that never joins its group.
const (
	// The broker's group.min.session.timeout.ms and
	// group.max.session.timeout.ms defaults: a JoinGroup outside them is
	// refused with INVALID_SESSION_TIMEOUT.
	minSessionTimeout = 6 * time.Second
	maxSessionTimeout = 30 * time.Minute

	defaultSessionTimeout    = 45 * time.Second
	defaultHeartbeatInterval = 3 * time.Second

	// The client's read limit (franz-go BrokerMaxReadBytes default): a
	// larger fetch.max.bytes makes the client refuse to start.
	maxFetchBytes = 100 << 20
	// franz-go's minimum of a client.id's length is none, its maximum 256.
	maxClientIDLength = 256
)

// msRange is a duration property's allowed range in milliseconds, as
// franz-go (which refuses to create a client otherwise) or Kafka needs it.
var msRange = map[string][2]time.Duration{
	"fetch.max.wait.ms":       {10 * time.Millisecond, time.Duration(1<<31-1) * time.Millisecond},
	"session.timeout.ms":      {minSessionTimeout, maxSessionTimeout},
	"rebalance.timeout.ms":    {100 * time.Millisecond, time.Duration(1<<31-1) * time.Millisecond},
	"max.poll.interval.ms":    {100 * time.Millisecond, time.Duration(1<<31-1) * time.Millisecond},
	"auto.commit.interval.ms": {100 * time.Millisecond, time.Duration(1<<31-1) * time.Millisecond},
	"connections.max.idle.ms": {100 * time.Millisecond, 15 * time.Minute},
	"request.timeout.ms":      {100 * time.Millisecond, 15 * time.Minute},
	"metadata.max.age.ms":     {5 * time.Second, time.Hour},
}

// checkPropertyRanges reports the parsed properties (named in set) that
// Kafka or the client would refuse, each by its name.
func checkPropertyRanges(p ConsumerProperties, set map[string]any) []PropertyProblem {
	var probs []PropertyProblem
	add := func(name, format string, args ...any) {
		probs = append(probs, PropertyProblem{name, fmt.Sprintf(format, args...)})
	}
	durations := map[string]time.Duration{
		"fetch.max.wait.ms":       p.FetchMaxWait,
		"session.timeout.ms":      p.SessionTimeout,
		"rebalance.timeout.ms":    p.RebalanceTimeout,
		"max.poll.interval.ms":    p.RebalanceTimeout,
		"auto.commit.interval.ms": p.AutoCommitInterval,
		"connections.max.idle.ms": p.ConnectionsMaxIdle,
		"request.timeout.ms":      p.RequestTimeoutOverhead,
		"metadata.max.age.ms":     p.MetadataMaxAge,
	}
	names := make([]string, 0, len(set))
	for name := range set {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		r, ok := msRange[name]
		if !ok {
			continue
		}
		if d := durations[name]; d < r[0] || d > r[1] {
			why := ""
			if name == "session.timeout.ms" {
				why = " (the broker's group.min.session.timeout.ms and group.max.session.timeout.ms defaults)"
			}
			add(name, "%d is out of range: must be between %d and %d%s", d.Milliseconds(), r[0].Milliseconds(), r[1].Milliseconds(), why)
		}
	}
	if _, ok := set["max.poll.records"]; ok && p.MaxPollRecords < 1 {
		add("max.poll.records", "must be at least 1")
	}
	if _, ok := set["fetch.max.bytes"]; ok && (p.FetchMaxBytes < 1 || p.FetchMaxBytes > maxFetchBytes) {
		add("fetch.max.bytes", "%d is out of range: must be between 1 and %d", p.FetchMaxBytes, maxFetchBytes)
	}
	if _, ok := set["max.partition.fetch.bytes"]; ok && p.MaxPartitionFetchBytes < 1 {
		add("max.partition.fetch.bytes", "must be at least 1")
	}
	session, heartbeat := p.SessionTimeout, p.HeartbeatInterval
	if session == 0 {
		session = defaultSessionTimeout
	}
	if heartbeat == 0 {
		heartbeat = defaultHeartbeatInterval
	}
	_, hbSet := set["heartbeat.interval.ms"]
	_, stSet := set["session.timeout.ms"]
	sessionInRange := session >= minSessionTimeout && session <= maxSessionTimeout
	if (hbSet || stSet) && sessionInRange && heartbeat >= session {
		add("heartbeat.interval.ms", "%d must be less than session.timeout.ms (%d)", heartbeat.Milliseconds(), session.Milliseconds())
	}
	for _, name := range []string{"client.id", "group.instance.id"} {
		v, ok := set[name]
		if !ok {
			continue
		}
		s := fmt.Sprint(v)
		for _, r := range s {
			if unicode.IsControl(r) {
				add(name, "must not contain control characters such as a newline (%q)", r)
				break
			}
		}
		if name == "client.id" && len(s) > maxClientIDLength {
			add(name, "is %d bytes long; at most %d", len(s), maxClientIDLength)
		}
	}
	return probs
}
