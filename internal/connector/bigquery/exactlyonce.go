package bigquery

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/metrics"
)

// Exactly-once (delivery: exactly_once) writes each batch through PENDING
// streams, one per table (per schema version) per batch, finalizes them
// and commits them table by table with BatchCommitWriteStreams, which is
// atomic for one table only. So the Kafka position lives in the rows:
// every row carries _sluice_topic, _sluice_partition and _sluice_offset.
// The Kafka offsets are committed by the source after Write returns, as in
// at-least-once; what a crash makes the engine read again is deduplicated
// here: before writing (table, topic, partition) for the first time in
// this process, or after the partition was assigned again, the sink asks
// BigQuery for the highest _sluice_offset committed there and skips every
// record at or below it. A kill between two tables' commits therefore
// neither loses nor duplicates a row. One consumer owns a partition, and
// its rows reach a table in offset order, so that maximum is a valid
// watermark; it is kept up to date after each commit.
//
// The read path is a query (jobs.query):
//
//	SELECT _sluice_partition, MAX(_sluice_offset) FROM `p.d.t`
//	WHERE _sluice_topic = @topic GROUP BY _sluice_partition
//
// rather than tabledata.list, which would page through the whole table on
// every assignment, or the streams' own offsets, which BigQuery cannot
// list per table. The query reads three columns once per table and
// partition assignment, and BigQuery's committed rows only.
type exactlyOnce struct {
	// slots bounds the AppendRows calls on PENDING streams open at once in
	// the process (per shared client): each is a connection to BigQuery's
	// quota, as a PENDING stream cannot be multiplexed, so max_connections
	// of them at most; the others queue. Creating, finalizing and
	// committing streams (unary calls) take no slot.
	slots chan struct{}

	mu    sync.Mutex
	marks map[markKey]int64 // highest committed offset; -1: none; absent: ask
}

type markKey struct {
	table, topic string
	partition    int32
}

// pendingParallelism bounds the tables of one Write whose PENDING streams
// are being created, appended or finalized at once: more than the
// AppendRows slots, so that the unary calls of some tables overlap the
// appends of others and share the connections' writes.
const pendingParallelism = 32

var pendingSlots = struct {
	mu sync.Mutex
	m  map[clientKey]chan struct{}
}{m: map[clientKey]chan struct{}{}}

func newExactlyOnce(k clientKey) *exactlyOnce {
	pendingSlots.mu.Lock()
	defer pendingSlots.mu.Unlock()
	slots := pendingSlots.m[k]
	if slots == nil {
		slots = make(chan struct{}, k.maxConnections)
		pendingSlots.m[k] = slots
	}
	return &exactlyOnce{slots: slots, marks: map[markKey]int64{}}
}

// withOffsetColumns adds the columns exactly-once needs to metadata.
func withOffsetColumns(metadata []string) []string {
	out := slices.Clone(metadata)
	for _, m := range []string{"topic", "partition", "offset"} {
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}

// LoadOffsets implements connector.OffsetStore. The Kafka source calls it
// on every partition assignment: the partition may have been written by
// another process since this one last owned it, so what this process
// knows of it is forgotten and asked of BigQuery again at the next write.
// It stores no offsets of its own: the source resumes from the group's.
func (s *Sink) LoadOffsets(_ context.Context, topic string, partitions []int32) (map[int32]int64, error) {
	if s.eos == nil {
		return nil, nil
	}
	s.eos.mu.Lock()
	defer s.eos.mu.Unlock()
	for k := range s.eos.marks {
		if k.topic == topic && slices.Contains(partitions, k.partition) {
			delete(s.eos.marks, k)
		}
	}
	return nil, nil
}

// tableBatch is what one Write sends to one table.
type tableBatch struct {
	name    string
	parent  string
	units   []*appendUnit
	streams []string // finalized PENDING streams, once appended
	failed  error    // not committed: its records are NotWritten
}

func (tb *tableBatch) records() []*connector.Record {
	var out []*connector.Record
	for _, u := range tb.units {
		out = append(out, u.recs...)
	}
	return out
}

// writeExactlyOnce is Write in exactly-once mode. Tables are committed
// independently: a table that fails reports its records NotWritten (none
// of them is in BigQuery), the others are durable. A record rejected
// makes the records after it in its partition NotWritten in every table,
// so no stored offset passes it before on_error has handled it.
func (s *Sink) writeExactlyOnce(ctx context.Context, batch []*connector.Record) error {
	bad := &badRecords{s: s}
	units, err := s.prepareAll(ctx, batch, bad)
	if err != nil {
		return err
	}
	var notWritten []*connector.Record
	units, notWritten = cutAfterRejected(units, bad)
	tbs := groupByTable(units)

	// Learn the watermarks, then drop what BigQuery already holds.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(prepareParallelism)
	for _, tb := range tbs {
		g.Go(func() error { return s.learnMarks(gctx, tb.name, tb.records()) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for _, tb := range tbs {
		tb.units = s.skipCommitted(tb.name, tb.units)
	}

	// Append every table to its PENDING streams (max_connections
	// AppendRows calls at once).
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(pendingParallelism)
	for _, tb := range tbs {
		if len(tb.units) == 0 {
			continue
		}
		g.Go(func() error {
			tb.failed = s.appendPending(gctx, tb, bad)
			if connector.IsPermanent(tb.failed) {
				return tb.failed
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	// Rows refused while appending cut their partitions too: a table
	// holding records past one is not committed.
	cut := firstRejected(bad)
	for _, tb := range tbs {
		if tb.failed == nil && len(tb.units) > 0 && passesRejected(tb.records(), cut) {
			tb.failed = errors.New("not committed: it holds records past one rejected in the same partition")
		}
	}

	// Commit table by table.
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(prepareParallelism)
	for _, tb := range tbs {
		if tb.failed != nil || len(tb.streams) == 0 {
			continue
		}
		g.Go(func() error {
			tb.failed = s.commitTable(gctx, tb)
			return nil
		})
	}
	g.Wait()

	var cause error
	for _, tb := range tbs {
		if tb.failed == nil {
			continue
		}
		notWritten = append(notWritten, tb.records()...)
		if cause == nil {
			cause = fmt.Errorf("writing table %s: %w", tb.name, tb.failed)
		}
	}
	bad.mu.Lock()
	defer bad.mu.Unlock()
	notWritten = connector.Without(notWritten, bad.list)
	if len(notWritten) > 0 {
		return &connector.BatchError{Failed: bad.list, NotWritten: notWritten, Cause: cause}
	}
	if len(bad.list) > 0 {
		return &connector.BatchError{Failed: bad.list}
	}
	return nil
}

func groupByTable(units []*appendUnit) []*tableBatch {
	var out []*tableBatch
	byName := map[string]*tableBatch{}
	for _, u := range units {
		tb := byName[u.tv.name]
		if tb == nil {
			tb = &tableBatch{name: u.tv.name, parent: u.tv.parent}
			byName[u.tv.name] = tb
			out = append(out, tb)
		}
		tb.units = append(tb.units, u)
	}
	return out
}

// firstRejected is the lowest rejected offset per topic and partition.
func firstRejected(bad *badRecords) map[markKey]int64 {
	bad.mu.Lock()
	defer bad.mu.Unlock()
	cut := map[markKey]int64{}
	for _, re := range bad.list {
		k := markKey{topic: re.Record.Topic, partition: re.Record.Partition}
		if o, ok := cut[k]; !ok || re.Record.Offset < o {
			cut[k] = re.Record.Offset
		}
	}
	return cut
}

func passesRejected(recs []*connector.Record, cut map[markKey]int64) bool {
	for _, r := range recs {
		if o, ok := cut[markKey{topic: r.Topic, partition: r.Partition}]; ok && r.Offset > o {
			return true
		}
	}
	return false
}

// cutAfterRejected takes out of units the records that come after a
// rejected record of their partition.
func cutAfterRejected(units []*appendUnit, bad *badRecords) ([]*appendUnit, []*connector.Record) {
	cut := firstRejected(bad)
	if len(cut) == 0 {
		return units, nil
	}
	var held []*connector.Record
	return filterUnits(units, func(r *connector.Record) bool {
		o, ok := cut[markKey{topic: r.Topic, partition: r.Partition}]
		if ok && r.Offset > o {
			held = append(held, r)
			return false
		}
		return true
	}), held
}

// filterUnits keeps the rows whose record keep accepts.
func filterUnits(units []*appendUnit, keep func(*connector.Record) bool) []*appendUnit {
	out := units[:0:0]
	for _, u := range units {
		next := &appendUnit{tv: u.tv}
		for i, r := range u.recs {
			if keep(r) {
				next.recs = append(next.recs, r)
				next.rows = append(next.rows, u.rows[i])
				next.bytes += len(u.rows[i]) + rowOverhead
			}
		}
		if len(next.rows) > 0 {
			out = append(out, next)
		}
	}
	return out
}

// skipCommitted drops the records at or below their partition's mark.
func (s *Sink) skipCommitted(table string, units []*appendUnit) []*appendUnit {
	s.eos.mu.Lock()
	defer s.eos.mu.Unlock()
	skipped := 0
	out := filterUnits(units, func(r *connector.Record) bool {
		mark, ok := s.eos.marks[markKey{table, r.Topic, r.Partition}]
		if ok && r.Offset <= mark {
			skipped++
			return false
		}
		return true
	})
	if skipped > 0 {
		s.stats.skipped.Add(int64(skipped))
		s.log.Info("skipping records BigQuery already holds", "table", table, "records", skipped)
	}
	return out
}

// commitTable finalizes nothing more (appendPending did) and commits tb's
// streams, retrying transient failures. A commit whose answer was lost is
// asked again: BigQuery then answers STREAM_ALREADY_COMMITTED, which means
// it is done. When the outcome stays unknown (ctx ended), the table's
// marks are forgotten so the next write asks BigQuery what it holds.
func (s *Sink) commitTable(ctx context.Context, tb *tableBatch) error {
	bo := backoff{}
	for {
		raw, err := s.client.pendingClient()
		if err != nil {
			return err
		}
		resp, err := raw.BatchCommitWriteStreams(ctx, &storagepb.BatchCommitWriteStreamsRequest{Parent: tb.parent, WriteStreams: tb.streams})
		if err == nil {
			err = commitError(resp)
			if err == nil {
				recs := tb.records()
				s.stats.commits.Add(1)
				s.stats.rows.Add(int64(len(recs))) // confirmed by the commit
				metrics.BigQueryRowsAppended.WithLabelValues(s.pipeline).Add(float64(len(recs)))
				s.advanceMarks(tb.name, recs)
				return nil
			}
			return err // a stream error: nothing committed, and it will not heal
		}
		switch status.Code(err) {
		case codes.InvalidArgument, codes.NotFound, codes.PermissionDenied, codes.FailedPrecondition:
			return fmt.Errorf("committing: %w", err)
		}
		if ctx.Err() != nil {
			s.forgetMarks(tb.name, tb.records())
			return fmt.Errorf("committing: %w (last error: %v)", ctx.Err(), err)
		}
		s.log.Warn("committing BigQuery streams; retrying", "table", tb.name, "attempt", bo.attempt+1, "err", err)
		if werr := bo.wait(ctx); werr != nil {
			s.forgetMarks(tb.name, tb.records())
			return fmt.Errorf("committing: %w (last error: %v)", werr, err)
		}
	}
}

// commitError reads a BatchCommitWriteStreams answer: nil when every
// stream is committed (now, or by an earlier try whose answer was lost).
func commitError(resp *storagepb.BatchCommitWriteStreamsResponse) error {
	if resp.GetCommitTime() != nil && len(resp.GetStreamErrors()) == 0 {
		return nil
	}
	var errs []error
	for _, se := range resp.GetStreamErrors() {
		if se.GetCode() != storagepb.StorageError_STREAM_ALREADY_COMMITTED {
			errs = append(errs, fmt.Errorf("stream %s: %s: %s", se.GetEntity(), se.GetCode(), se.GetErrorMessage()))
		}
	}
	if len(errs) == 0 && len(resp.GetStreamErrors()) > 0 {
		return nil
	}
	if len(errs) == 0 {
		return errors.New("committing: BigQuery answered without a commit time")
	}
	return fmt.Errorf("committing: %w", errors.Join(errs...))
}

func (s *Sink) advanceMarks(table string, recs []*connector.Record) {
	s.eos.mu.Lock()
	defer s.eos.mu.Unlock()
	for _, r := range recs {
		k := markKey{table, r.Topic, r.Partition}
		// Only a known mark moves: one forgotten meanwhile (the partition
		// was assigned again) is asked of BigQuery at the next write.
		if m, ok := s.eos.marks[k]; ok && r.Offset > m {
			s.eos.marks[k] = r.Offset
		}
	}
}

func (s *Sink) forgetMarks(table string, recs []*connector.Record) {
	s.eos.mu.Lock()
	defer s.eos.mu.Unlock()
	for _, r := range recs {
		delete(s.eos.marks, markKey{table, r.Topic, r.Partition})
	}
}
