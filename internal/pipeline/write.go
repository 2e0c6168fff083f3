package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/metrics"
)

// writeBatch writes b until the sink says it is durable, retrying transient
// failures with backoff, routes records the sink rejected as bad input, and
// only then acks the batch to the source.
func (p *Pipeline) writeBatch(ctx context.Context, r connector.Reader, b *batch) error {
	start := time.Now()
	bo := newBackoff()
	rejected, rejectedBytes := 0, 0
	prep, _ := p.opts.Sink.(connector.Preparer)
	for {
		var err error
		if prep != nil {
			err = prep.WritePrepared(ctx, b.records, b.prepared)
		} else {
			err = p.opts.Sink.Write(ctx, b.records)
		}
		if err == nil {
			break
		}
		var be *connector.BatchError
		if errors.As(err, &be) {
			for _, re := range be.Failed {
				if herr := p.handleBad(ctx, re); herr != nil {
					return herr
				}
				rejected++
				if re.Record != nil {
					rejectedBytes += re.Record.Size()
				}
			}
			break
		}
		if connector.IsPermanent(err) {
			p.stats.errors.Add(1)
			metrics.Errors.WithLabelValues(p.opts.Name, "write").Inc()
			return fmt.Errorf("writing %d records to the sink: %w", len(b.records), err)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("writing %d records to the sink: shutdown timeout reached: %w", len(b.records), err)
		}
		p.stats.retries.Add(1)
		metrics.Retries.WithLabelValues(p.opts.Name, "write").Inc()
		p.log.Warn("writing to sink; retrying", "records", len(b.records), "attempt", bo.attempt+1, "err", err)
		if bo.wait(ctx) != nil {
			return fmt.Errorf("writing %d records to the sink: shutdown timeout reached: %w", len(b.records), err)
		}
	}
	r.Ack(b.records)
	p.limiter.release(len(b.records), b.weight)
	p.stats.wrote(b, len(b.records)-rejected, b.bytes-rejectedBytes, start, time.Now())
	return nil
}

// decode runs the decoder, retrying transient failures (a registry that is
// down) until ctx ends. A *connector.RecordError is returned as is.
func (p *Pipeline) decode(ctx context.Context, r *connector.Record) error {
	bo := newBackoff()
	for {
		err := p.opts.Decoder.Decode(ctx, r)
		if err == nil {
			return nil
		}
		var re *connector.RecordError
		if errors.As(err, &re) {
			if re.Record == nil {
				re.Record = r
			}
			return re
		}
		p.stats.retries.Add(1)
		metrics.Retries.WithLabelValues(p.opts.Name, "decode").Inc()
		p.log.Warn("decoding record; retrying", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "attempt", bo.attempt+1, "err", err)
		if werr := bo.wait(ctx); werr != nil {
			return fmt.Errorf("decoding %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err)
		}
	}
}

// handleBad routes a bad record by on_error. It returns an error only when
// the pipeline must stop (fail mode, or the dead-letter write cannot be
// done before shutdown).
func (p *Pipeline) handleBad(ctx context.Context, re *connector.RecordError) error {
	rec := re.Record
	reason := re.Reason
	if reason == "" {
		reason = "invalid"
	}
	p.stats.errors.Add(1)
	metrics.Errors.WithLabelValues(p.opts.Name, "bad_record").Inc()
	switch p.opts.OnError {
	case OnErrorSkip:
		p.stats.skipped.Add(1)
		metrics.RecordsSkipped.WithLabelValues(p.opts.Name, reason).Inc()
		p.log.Warn("skipping bad record", "topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "reason", reason, "err", re.Err)
		return nil
	case OnErrorDLQ:
		bo := newBackoff()
		for {
			err := p.opts.DeadLetter.Send(ctx, rec, re)
			if err == nil {
				break
			}
			p.stats.retries.Add(1)
			metrics.Retries.WithLabelValues(p.opts.Name, "dlq").Inc()
			p.log.Warn("sending to dead-letter destination; retrying", "topic", rec.Topic, "offset", rec.Offset, "err", err)
			if bo.wait(ctx) != nil {
				return fmt.Errorf("sending %s/%d@%d to the dead-letter destination: %w", rec.Topic, rec.Partition, rec.Offset, err)
			}
		}
		p.stats.deadLettered.Add(1)
		metrics.RecordsDeadLettered.WithLabelValues(p.opts.Name, reason).Inc()
		return nil
	default:
		return fmt.Errorf("bad record (on_error: fail): %w", re)
	}
}
