package config

import (
	"fmt"
	"strings"
	"time"
)

// CreateWriteStreamQuota is BigQuery's documented quota of
// CreateWriteStream calls: 10,000 streams every hour, per project and
// region (https://cloud.google.com/bigquery/quotas#write-api-limits).
// Exactly-once creates one PENDING stream per table per batch.
const CreateWriteStreamQuota = 10000

const (
	defaultCommitInterval         = 10 * time.Second
	defaultExpectedTemplateTables = 20
)

func (b *BigQuerySink) commitInterval() time.Duration {
	if b.CommitInterval == 0 {
		return defaultCommitInterval
	}
	return b.CommitInterval
}

// expectedTables is ExpectedTables or its default.
func (b *BigQuerySink) expectedTables() int {
	switch {
	case b.ExpectedTables > 0:
		return b.ExpectedTables
	case strings.Contains(b.Table, "{{"):
		return defaultExpectedTemplateTables
	}
	return 1
}

// validateExactlyOnce checks what delivery: exactly_once needs: a commit
// interval, and an expected pace of CreateWriteStream calls within the
// quota: tables x consumers x batches per hour, a batch lasting
// batch.linger (commit_interval unless set).
func (b *BigQuerySink) validateExactlyOnce(v *validator, p *Pipeline) {
	if b.ExpectedTables < 0 {
		v.add("expected_tables", "must be >= 0")
	}
	v.positiveDuration("commit_interval", b.CommitInterval)
	// An emulator (loopback or http:// endpoints) has no such quota.
	if p.Delivery != ExactlyOnce || b.CommitInterval <= 0 || p.Batch.Linger <= 0 || b.Plaintext() {
		return
	}
	consumers := 1
	if k := p.Source.Kafka; k != nil && k.Consumers > 1 {
		consumers = k.Consumers
	}
	tables := b.expectedTables()
	perHour := float64(time.Hour) / float64(p.Batch.Linger)
	streams := int64(float64(tables*consumers) * perHour)
	if streams > CreateWriteStreamQuota {
		need := time.Duration(float64(time.Hour) * float64(tables*consumers) / CreateWriteStreamQuota).Round(time.Second)
		v.add("commit_interval", fmt.Sprintf("delivery: exactly_once would create about %d write streams per hour "+
			"(%d tables x %d consumers x %.0f batches per hour at a %s batch.linger), over BigQuery's quota of %d "+
			"CreateWriteStream calls per hour per project and region; set commit_interval (and batch.linger) to %s or more, "+
			"or use delivery: at_least_once (the default stream, no stream creation)",
			streams, tables, consumers, perHour, p.Batch.Linger, CreateWriteStreamQuota, need))
	}
}
