package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/metrics"
)

// writeBatch writes b until every record is settled: durable, rejected
// as bad input and routed by on_error, or released to the partition's new
// owner. It retries what the sink did not write (transient failures after
// a backoff) and acks each record to the source only once it is settled,
// so no committed offset passes a record that is neither durable nor
// routed.
func (p *Pipeline) writeBatch(ctx context.Context, r connector.Reader, b *batch) error {
	start := time.Now()
	retry := p.newRetry("write", "writing to sink")
	defer retry.done()
	prep, _ := p.opts.Sink.(connector.Preparer)
	spread, _ := p.opts.Sink.(connector.SpreadWriter)
	pending, prepared := b.records, b.prepared
	durable, durableBytes := 0, 0
	settledWeight := 0
	// settle acks recs and gives back what they held in flight. Durable
	// ones are counted out and move their partitions' event time before
	// the ack: they are in the sink from the moment the write returned,
	// however long the source takes to ack them, and records_out, the
	// watermark and freshness must not lag behind the sink.
	settle := func(recs []*connector.Record, isDurable bool) {
		if len(recs) == 0 {
			return
		}
		if isDurable {
			bytes := 0
			for _, rec := range recs {
				bytes += rec.Size()
			}
			durable += len(recs)
			durableBytes += bytes
			p.stats.durable(len(recs), bytes)
		}
		p.eventTime.settled(recs, isDurable)
		r.Ack(recs)
		w := 0
		for _, rec := range recs {
			w += rec.Size() + decodedWeight(rec)
		}
		p.limiter.release(len(recs), w)
		settledWeight += w
	}
	for len(pending) > 0 {
		var err error
		switch {
		case p.spread > 0:
			err = spread.WriteSpread(ctx, pending, p.spread)
		case prep != nil:
			err = prep.WritePrepared(ctx, pending, prepared)
		default:
			err = p.opts.Sink.Write(ctx, pending)
		}
		var be *connector.BatchError
		switch {
		case err == nil:
			settle(pending, true)
			pending = nil
			continue
		case errors.As(err, &be):
			settle(be.Durable(pending), true)
			for _, re := range be.Failed {
				if herr := p.handleBad(ctx, re); herr != nil {
					return herr
				}
				settle([]*connector.Record{re.Record}, false)
			}
			if len(be.Released) > 0 {
				p.log.Info("records released to their partition's new owner", "records", len(be.Released))
				settle(be.Released, false)
			}
			pending, prepared = be.NotWritten, nil
			if len(pending) == 0 || be.Cause == nil {
				continue // the sink stopped short on purpose: write the rest now
			}
			err = be.Cause
		}
		if connector.IsPermanent(err) {
			p.stats.errors.Add(1)
			metrics.Errors.WithLabelValues(p.opts.Name, "write").Inc()
			return fmt.Errorf("writing %d records to the sink: %w", len(pending), err)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("writing %d records to the sink: shutdown timeout reached: %w", len(pending), err)
		}
		if rerr := retry.failed(ctx, err, "records", len(pending)); rerr != nil {
			if connector.IsPermanent(rerr) {
				p.stats.errors.Add(1)
				metrics.Errors.WithLabelValues(p.opts.Name, "write").Inc()
			}
			return fmt.Errorf("writing %d records to the sink: %w", len(pending), rerr)
		}
	}
	// What the batch held beyond its records' own weights (estimates made
	// at accept time) goes back too.
	if rest := b.weight - settledWeight; rest != 0 {
		p.limiter.release(0, rest)
	}
	p.stats.wrote(b, durable, durableBytes, start, time.Now())
	return nil
}

// decode runs the decoder, retrying transient failures (a registry that is
// down) until ctx ends. A *connector.RecordError is returned as is.
func (p *Pipeline) decode(ctx context.Context, r *connector.Record) error {
	var retry *retryOp // made on the first failure: decode is on every record's path
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
		if retry == nil {
			retry = p.newRetry("decode", "decoding record")
			defer retry.done()
		}
		if rerr := retry.failed(ctx, err, "topic", r.Topic, "partition", r.Partition, "offset", r.Offset); rerr != nil {
			return fmt.Errorf("decoding %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, rerr)
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
		retry := p.newRetry("dlq", "sending to the dead-letter destination")
		defer retry.done()
		for {
			err := p.opts.DeadLetter.Send(ctx, rec, re)
			if err == nil {
				break
			}
			if connector.IsPermanent(err) {
				return fmt.Errorf("sending %s/%d@%d to the dead-letter destination: %w", rec.Topic, rec.Partition, rec.Offset, err)
			}
			if rerr := retry.failed(ctx, err, "topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset); rerr != nil {
				return fmt.Errorf("sending %s/%d@%d to the dead-letter destination: %w", rec.Topic, rec.Partition, rec.Offset, rerr)
			}
		}
		p.stats.deadLettered.Add(1)
		metrics.RecordsDeadLettered.WithLabelValues(p.opts.Name, reason).Inc()
		return nil
	default:
		return fmt.Errorf("bad record (on_error: fail): %w", re)
	}
}
