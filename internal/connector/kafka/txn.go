package kafka

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/metrics"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// Exactly-once Kafka -> Kafka (delivery: exactly_once).
//
// Each consumer's batches are written by a transactional producer of its
// own. One batch is one transaction: its records are produced, the source
// offsets after it are committed to the consumer group in the same
// transaction (AddOffsetsToTxn + TxnOffsetCommit, carrying the consumer's
// group generation and member id, KIP-447), and the transaction commits.
// A process that dies mid-transaction leaves it open until
// transaction_timeout; read_committed readers never see its records, and
// the group's committed offsets are those of the last committed
// transaction, where the next owner resumes.
//
// A rebalance fences the transaction: the group refuses the offset commit
// of a stale generation, and a batch whose partitions were revoked before
// it committed is aborted; on retry, records of partitions this consumer no
// longer owns are dropped (their new owner reads them again from the
// committed offset). The new owner's offset fetch waits for a transaction
// still pending (kgo.RequireStableFetchOffsets), so it never starts from a
// position that is about to move.
//
// Franz-go's GroupTransactSession does this for a client that consumes and
// produces, but commits everything polled; Sluice reads ahead of what it
// has written, so it commits per batch itself.

// txnOptions are what the sink needs to open transactional producers.
type txnOptions struct {
	pipeline string
	cfg      config.KafkaSink // producer options are built per producer: each needs hooks of its own
	prefix   string
	instance string // random per process, as Kafka Streams does
	timeout  time.Duration
	log      *slog.Logger
	// written is what this process's transactions committed: a batch
	// written again (the engine repeats a write whose outcome it could not
	// tell) skips what is already there instead of duplicating it.
	written *committedOffsets
}

// committedOffsets is, per partition, the source offset after the last
// record this process committed in a transaction. It only ever lags the
// group's own committed offsets, so a record below it is certainly written.
type committedOffsets struct {
	mu   sync.Mutex
	next map[topicPartition]int64
}

func (c *committedOffsets) add(offsets map[string]map[int32]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for topic, parts := range offsets {
		for p, off := range parts {
			tp := topicPartition{topic, p}
			c.next[tp] = max(c.next[tp], off)
		}
	}
}

// unwritten returns the records of recs not yet committed.
func (c *committedOffsets) unwritten(recs []*connector.Record) []*connector.Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return atOrAbove(recs, c.next)
}

// atOrAbove returns the records of recs at or above their partition's
// offset in floor (recs itself when that is all of them).
func atOrAbove(recs []*connector.Record, floor map[topicPartition]int64) []*connector.Record {
	out := recs[:0:0]
	for _, rec := range recs {
		if rec.Offset >= floor[topicPartition{rec.Topic, rec.Partition}] {
			out = append(out, rec)
		}
	}
	if len(out) == len(recs) {
		return recs
	}
	return out
}

func newTxnOptions(pipeline string, cfg config.KafkaSink, prefix string, log *slog.Logger) txnOptions {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return txnOptions{pipeline: pipeline, cfg: cfg, prefix: prefix, instance: hex.EncodeToString(b[:]), timeout: cfg.TransactionTimeout, log: log,
		written: &committedOffsets{next: map[topicPartition]int64{}}}
}

// txnProducer is one consumer's transactional producer.
type txnProducer struct {
	cl *kgo.Client
	id string
}

// producerFor returns r's transactional producer, opening it on first use.
// Only r's writer goroutine calls it.
func (s *Sink) producerFor(ctx context.Context, r *reader) (*txnProducer, error) {
	r.txnMu.Lock()
	defer r.txnMu.Unlock()
	if r.txn != nil {
		return r.txn, nil
	}
	id := s.txn.prefix + "-" + s.txn.instance + "-" + r.member
	base, err := ProducerOptions(s.txn.cfg, s.txn.log)
	if err != nil {
		return nil, err
	}
	opts := append(base,
		kgo.TransactionalID(id),
		kgo.TransactionTimeout(s.txn.timeout),
		// The classic transaction protocol (explicit AddOffsetsToTxn and
		// TxnOffsetCommit v3-4), which every broker since Kafka 2.5
		// speaks, and which this sink drives itself.
		kgo.MaxVersions(kversion.V3_9_0()),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("creating transactional producer %s: %w", id, err)
	}
	if _, _, err := cl.ProducerID(ctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("initialising transactional producer %s: %w", id, err)
	}
	r.txn = &txnProducer{cl: cl, id: id}
	return r.txn, nil
}

// dropProducer closes r's producer after a failure that left its
// transaction in an unknown state; the next batch opens a new one with the
// same transactional.id, which fences and aborts whatever was left open.
func (s *Sink) dropProducer(r *reader) {
	r.txnMu.Lock()
	defer r.txnMu.Unlock()
	if r.txn != nil {
		r.txn.cl.Close()
		r.txn = nil
	}
}

var errRevokedInTxn = errors.New("partitions were revoked during the transaction; aborted (their new owner reads them again)")

// writeExactlyOnce writes batch in one transaction with its source offsets.
//
// A record that cannot be written (a topic or value it cannot be encoded
// to, or one the broker refuses) aborts the transaction: committing the
// others would commit offsets past it before on_error has handled it, and
// a crash or a "fail" stop then would skip it for good. The write reports
// it Failed and every other record NotWritten; the engine routes it and
// writes the rest in a new transaction at once.
//
// With workers > 1 the batch's records are encoded on that many
// goroutines (produce), still in this one transaction.
func (s *Sink) writeExactlyOnce(ctx context.Context, batch []*connector.Record, workers int) error {
	r, owned := ownedRecords(batch)
	if r == nil {
		return connector.Permanent(errors.New("delivery: exactly_once with the kafka sink needs a kafka source"))
	}
	released := releasedRecords(batch, owned)
	if owned = r.aboveFloor(s.txn.written.unwritten(owned)); len(owned) == 0 {
		return releasedErr(released)
	}
	p, err := s.producerFor(ctx, r)
	if err != nil {
		return err
	}
	if err := p.cl.BeginTransaction(); err != nil {
		s.dropProducer(r)
		return fmt.Errorf("beginning a transaction: %w", err)
	}
	// Tie the group to the transaction while the records are produced:
	// one round trip less on the batch's path.
	added := make(chan error, 1)
	go func() { added <- addOffsetsToTxn(ctx, p, r.group) }()
	bad, _, err := s.produce(ctx, p.cl, owned, workers)
	if aerr := <-added; err == nil {
		err = aerr
	}
	if err == nil && len(bad) > 0 {
		if err := s.abort(ctx, r, p); err != nil {
			return err
		}
		return &connector.BatchError{Failed: bad, NotWritten: connector.Without(owned, bad), Released: released}
	}
	offsets := nextOffsets(owned)
	if err == nil {
		err = commitOffsetsInTxn(ctx, p, r, offsets)
	}
	if err == nil && r.anyRetired(owned) {
		err = errRevokedInTxn
	}
	if err != nil {
		if aerr := s.abort(ctx, r, p); aerr != nil {
			return errors.Join(err, aerr)
		}
		return err
	}
	start := time.Now()
	if err := p.cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		if committedAlready(ctx, r, offsets) {
			// The broker committed and only its answer was lost:
			// writing the batch again would duplicate it. The producer
			// is left wanting an abort that must not happen; a new one
			// (same transactional.id) replaces it.
			r.log.Warn("the transaction's commit was not confirmed, but the group's offsets show it committed", "err", err)
			s.dropProducer(r)
			s.txn.written.add(offsets)
			metrics.KafkaTransactions.WithLabelValues(s.txn.pipeline, "committed").Inc()
			return releasedErr(released)
		}
		if aerr := s.abort(ctx, r, p); aerr != nil {
			return errors.Join(fmt.Errorf("committing the transaction: %w", err), aerr)
		}
		return fmt.Errorf("committing the transaction: %w", err)
	}
	s.txn.written.add(offsets)
	metrics.CommitSeconds.WithLabelValues(s.txn.pipeline).Observe(time.Since(start).Seconds())
	metrics.KafkaTransactions.WithLabelValues(s.txn.pipeline, "committed").Inc()
	return releasedErr(released)
}

// releasedRecords lists the records of batch that are not in owned.
func releasedRecords(batch, owned []*connector.Record) []*connector.Record {
	if len(owned) == len(batch) {
		return nil
	}
	keep := make(map[*connector.Record]struct{}, len(owned))
	for _, rec := range owned {
		keep[rec] = struct{}{}
	}
	var out []*connector.Record
	for _, rec := range batch {
		if _, ok := keep[rec]; !ok {
			out = append(out, rec)
		}
	}
	return out
}

// releasedErr reports the records given back to their partition's new
// owner, nil when there are none.
func releasedErr(released []*connector.Record) error {
	if len(released) == 0 {
		return nil
	}
	return &connector.BatchError{Released: released}
}

// abort ends the open transaction without committing; a producer that
// cannot abort is dropped (the next one fences it).
func (s *Sink) abort(ctx context.Context, r *reader, p *txnProducer) error {
	metrics.KafkaTransactions.WithLabelValues(s.txn.pipeline, "aborted").Inc()
	err := p.cl.AbortBufferedRecords(ctx)
	if err == nil {
		err = p.cl.EndTransaction(ctx, kgo.TryAbort)
	}
	if err != nil {
		s.dropProducer(r)
		return fmt.Errorf("aborting the transaction: %w", err)
	}
	return nil
}

// ownedRecords finds the reader the batch came from and the records of
// partitions it still owns.
func ownedRecords(batch []*connector.Record) (*reader, []*connector.Record) {
	var r *reader
	for _, rec := range batch {
		if c, ok := rec.Origin.(*chunk); ok {
			r = c.t.r
			break
		}
	}
	if r == nil {
		return nil, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	owned := make([]*connector.Record, 0, len(batch))
	for _, rec := range batch {
		if c, ok := rec.Origin.(*chunk); ok && c.t.r == r && !c.t.retired {
			owned = append(owned, rec)
		}
	}
	return r, owned
}

// anyRetired reports whether a partition of recs was revoked or lost.
func (r *reader) anyRetired(recs []*connector.Record) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range recs {
		if c, ok := rec.Origin.(*chunk); ok && c.t.retired {
			return true
		}
	}
	return false
}

// nextOffsets is, per partition, the offset after the last of recs: the
// consumer writes its batches in read order, so everything before it is
// written (or was handed to on_error before this batch was written). Only
// owned partitions may be passed: Kafka does not check who commits.
func nextOffsets(batch []*connector.Record) map[string]map[int32]int64 {
	out := map[string]map[int32]int64{}
	for _, rec := range batch {
		ps := out[rec.Topic]
		if ps == nil {
			ps = map[int32]int64{}
			out[rec.Topic] = ps
		}
		if next := rec.Offset + 1; next > ps[rec.Partition] {
			ps[rec.Partition] = next
		}
	}
	return out
}

// committedAlready reports whether the group's stable committed offsets
// (pending transactions resolved first, RequireStable) are those of the
// batch, i.e. its transaction committed. Offsets only move forward, one
// batch at a time per partition, so equality identifies the batch.
func committedAlready(ctx context.Context, r *reader, offsets map[string]map[int32]int64) bool {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	got, err := kadm.NewClient(r.cl).FetchOffsets(kadm.RequireStable(ctx), r.group)
	if err != nil {
		r.log.Warn("reading the group's offsets after an unconfirmed commit; treating it as aborted", "err", err)
		return false
	}
	for topic, parts := range offsets {
		for part, off := range parts {
			o, ok := got.Lookup(topic, part)
			if !ok || o.Err != nil || o.At != off {
				return false
			}
		}
	}
	return true
}

// addOffsetsToTxn ties the consumer group to the open transaction
// (AddOffsetsToTxn), so that its offset commit is part of it.
func addOffsetsToTxn(ctx context.Context, p *txnProducer, group string) error {
	id, epoch, err := p.cl.ProducerID(ctx)
	if err != nil {
		return fmt.Errorf("transactional producer id: %w", err)
	}
	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = p.id, id, epoch, group
	resp, err := add.RequestWith(ctx, p.cl)
	if err != nil {
		return fmt.Errorf("adding offsets to the transaction: %w", err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return fmt.Errorf("adding offsets to the transaction: %w", err)
	}
	return nil
}

// commitOffsetsInTxn commits the consumer group's offsets in the open
// transaction (after addOffsetsToTxn), fenced by the consumer's current
// generation.
func commitOffsetsInTxn(ctx context.Context, p *txnProducer, r *reader, offsets map[string]map[int32]int64) error {
	id, epoch, err := p.cl.ProducerID(ctx)
	if err != nil {
		return fmt.Errorf("transactional producer id: %w", err)
	}
	member, generation := r.cl.GroupMetadata()
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = p.id, r.group, id, epoch
	req.Generation, req.MemberID, req.InstanceID = generation, member, r.instanceID
	for topic, parts := range offsets {
		t := kmsg.NewTxnOffsetCommitRequestTopic()
		t.Topic = topic
		for part, off := range parts {
			pp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
			pp.Partition, pp.Offset, pp.LeaderEpoch = part, off, -1
			t.Partitions = append(t.Partitions, pp)
		}
		req.Topics = append(req.Topics, t)
	}
	resp, err := req.RequestWith(ctx, p.cl)
	if err != nil {
		return fmt.Errorf("committing offsets in the transaction: %w", err)
	}
	for _, t := range resp.Topics {
		for _, pp := range t.Partitions {
			if err := kerr.ErrorForCode(pp.ErrorCode); err != nil {
				return fmt.Errorf("committing offsets in the transaction: %s/%s: %w", t.Topic, strconv.Itoa(int(pp.Partition)), err)
			}
		}
	}
	return nil
}
