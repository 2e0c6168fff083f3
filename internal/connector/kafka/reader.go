package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/metrics"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type topicPartition struct {
	topic     string
	partition int32
}

// reader is one group member. Offsets are committed by its commit loop and
// on revoke, from the partition trackers, never on poll.
type reader struct {
	cl         *kgo.Client
	log        *slog.Logger
	pipeline   string
	member     string
	group      string
	instanceID *string // group.instance.id, if set
	maxPoll    int
	// classic: the classic group protocol (JoinGroup/SyncGroup), whose
	// commits go through commitInGeneration.
	classic bool

	// offsets, when set (exactly-once into a database), is where the sink
	// keeps the positions to resume from; see adjustOffsets.
	offsets   connector.OffsetStore
	clientSet chan struct{} // closed once cl is set
	// fatal is a problem no retry can heal, found by the group callbacks
	// (offsets outside the log); Read returns it, which stops the pipeline.
	fatal atomic.Pointer[error]

	// transactional: the Kafka sink commits this member's offsets in its
	// transactions, through txn, its own transactional producer (txn.go);
	// the reader commits nothing itself.
	transactional bool
	txnMu         sync.Mutex
	txn           *txnProducer
	// With both offsets and transactional (exactly-once routes to a
	// database and a Kafka topic), a partition resumes from the lower of
	// the two positions, and txnFloor (guarded by mu) holds the group's
	// committed offset of each assigned partition: the Kafka sink skips
	// the records below it, which an earlier transaction wrote. See
	// adjustOffsets. resetOffset is start_from.
	txnFloor    map[topicPartition]int64
	resetOffset kgo.Offset

	// commitMu serialises commits with revocation: the revoke callback
	// waits for an in-flight periodic commit, retires the revoked trackers,
	// then commits their final positions. A periodic commit that starts
	// afterwards no longer sees them, so it can never commit for a
	// partition that has moved to another member.
	commitMu sync.Mutex
	mu       sync.Mutex // guards parts, every tracker and ackedSinceCommit
	parts    map[topicPartition]*partitionTracker

	// commitEvery (commit.every.records) bounds what a crash re-delivers
	// beyond the records in flight: once that many records were acked
	// since the last commit was taken, Ack asks the commit loop, through
	// commitNow, to commit at once instead of at its next tick.
	commitEvery      int
	waitingSince     time.Time // guarded by mu: owning nothing since; zero while owning some
	ackedSinceCommit int
	commitNow        chan struct{} // capacity 1

	stopOnce  sync.Once
	stopped   chan struct{} // closed by Close: the engine reads and acks no more
	loopDone  chan struct{}
	stopWatch context.CancelFunc // ends watchTopics; nil when it does not run
	watchDone chan struct{}
	missing   sync.Map      // topic -> time.Time: source topics found missing, since when
	lagDone   chan struct{} // closed when the end-offset refresher (lag.go) stops

	// leave: removed for good (LeaveOnClose), so a static member leaves
	// the group on Close, through a client made from connOpts (set for
	// static members and for stop_at, whose probe uses it too).
	leave    atomic.Bool
	connOpts []kgo.Opt

	bound *bound // the source's stop_at; nil: unbounded
}

// LeaveOnClose makes Close leave the group even as a static member.
func (r *reader) LeaveOnClose() { r.leave.Store(true) }

// leaveStatic removes this static member from the group, by its instance
// id, once its own client is closed (which does not leave, and would
// rejoin if removed while running).
func (r *reader) leaveStatic(ctx context.Context) error {
	cl, err := kgo.NewClient(r.connOpts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).LeaveGroup(ctx, kadm.LeaveGroup(r.group).InstanceIDs(*r.instanceID).Reason("sluice: consumer removed"))
	if err == nil {
		err = resp.Error()
	}
	return err
}

// watchTopics looks for consumed topics that do not exist, at once and
// then every interval, until ctx ends, and calls missing for each: the
// client waits for them silently, so a typo or a topic not yet created
// would otherwise look like a quiet topic.
func (r *reader) watchTopics(ctx context.Context, topics []string, every time.Duration, missing func(topic string)) {
	defer close(r.watchDone)
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		checkCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		errs, err := topicErrors(checkCtx, r.cl, topics, false)
		cancel()
		if err == nil {
			for _, topic := range topics {
				if errors.Is(errs[topic], errTopicMissing) {
					r.missing.LoadOrStore(topic, time.Now())
					missing(topic)
				} else {
					r.missing.Delete(topic)
				}
			}
		}
		t.Reset(every)
	}
}

// Warnings implements connector.Warner: the source topics that do not
// exist (checked every minute).
func (r *reader) Warnings() []string {
	var out []string
	r.missing.Range(func(k, v any) bool {
		out = append(out, fmt.Sprintf("source topic %q does not exist (since %s); nothing is read from it until it is created",
			k, v.(time.Time).Format(time.RFC3339)))
		return true
	})
	sort.Strings(out)
	return out
}

// Read polls up to max records (max <= 0: whatever is buffered).
func (r *reader) Read(ctx context.Context, max int) ([]*connector.Record, error) {
	if r.maxPoll > 0 && (max <= 0 || r.maxPoll < max) {
		max = r.maxPoll
	}
	if err := r.fatalErr(); err != nil {
		return nil, err
	}
	if r.bound != nil && r.bound.exhausted() {
		<-ctx.Done() // everything bounded was read: the engine drains and stops
		return nil, ctx.Err()
	}
	var fetches kgo.Fetches
	if max > 0 {
		fetches = r.cl.PollRecords(ctx, max)
	} else {
		fetches = r.cl.PollFetches(ctx)
	}
	var firstErr error
	fetches.EachError(func(topic string, p int32, err error) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, kgo.ErrClientClosed) {
			return
		}
		permanent := isPermanentFetchError(err)
		if firstErr != nil && (!permanent || connector.IsPermanent(firstErr)) {
			return
		}
		if topic == "" {
			firstErr = fmt.Errorf("consumer group %s: %w", r.group, err)
		} else {
			firstErr = fmt.Errorf("fetching %s/%d: %w", topic, p, err)
		}
		if permanent {
			firstErr = connector.Permanent(firstErr)
		}
	})
	if err := r.fatalErr(); err != nil {
		// Delivered by the group session's error; what else the poll
		// holds comes from offsets we must not resume from.
		return nil, err
	}
	n := fetches.NumRecords()
	if n == 0 {
		if firstErr == nil {
			firstErr = ctx.Err()
		}
		return nil, firstErr
	}
	backing := make([]connector.Record, n)
	out := make([]*connector.Record, 0, n)
	var reachedEnd map[string][]int32
	r.mu.Lock()
	fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
		if len(fp.Records) == 0 {
			return
		}
		t := r.parts[topicPartition{fp.Topic, fp.Partition}]
		if t == nil {
			// Revoked since the fetch: the new owner reads these again.
			return
		}
		t.hwm = fp.HighWatermark
		recs := fp.Records
		if r.bound != nil {
			var done bool
			if recs, done = r.bound.admit(topicPartition{fp.Topic, fp.Partition}, recs); done {
				if reachedEnd == nil {
					reachedEnd = map[string][]int32{}
				}
				reachedEnd[fp.Topic] = append(reachedEnd[fp.Topic], fp.Partition)
			}
			if len(recs) == 0 {
				return
			}
		}
		data := 0
		for _, kr := range recs {
			if !kr.Attrs.IsControl() {
				data++
			}
		}
		c := t.add(recs[0].Offset, recs[len(recs)-1].Offset, data)
		c.firstTimestamp = recs[0].Timestamp
		if data == 0 {
			// Only markers (stop_at end keeps them): nothing to hand
			// out, and the committable position moves past them once
			// every record before them is acked.
			c.ack(0)
			if r.bound != nil {
				r.bound.acked(topicPartition{fp.Topic, fp.Partition}, t.next, 0)
			}
			return
		}
		for _, kr := range recs {
			if kr.Attrs.IsControl() {
				continue
			}
			rec := &backing[len(out)]
			rec.Topic = kr.Topic
			rec.Partition = kr.Partition
			rec.Offset = kr.Offset
			rec.Timestamp = kr.Timestamp
			rec.TimestampType = timestampType(kr.Attrs)
			rec.Key = kr.Key
			rec.Value = kr.Value
			if len(kr.Headers) > 0 {
				rec.Headers = make([]connector.Header, len(kr.Headers))
				for i, h := range kr.Headers {
					rec.Headers[i] = connector.Header{Key: h.Key, Value: h.Value}
				}
			}
			rec.Origin = c
			out = append(out, rec)
		}
	})
	r.mu.Unlock()
	if reachedEnd != nil {
		r.cl.PauseFetchPartitions(reachedEnd) // stop_at: nothing more to read there
	}
	return out, firstErr
}

// timestampType is the type a fetched record's timestamp has (its batch's
// attributes; a topic's message.timestamp.type decides it).
func timestampType(a kgo.RecordAttrs) connector.TimestampType {
	switch a.TimestampType() {
	case 0:
		return connector.TimestampCreateTime
	case 1:
		return connector.TimestampLogAppendTime
	}
	return connector.TimestampUnknown
}

// isPermanentFetchError: what the client reports but waiting cannot heal.
// A fenced member stays fenced (another member took its
// group.instance.id); a missing ACL stays missing until an operator acts.
func isPermanentFetchError(err error) bool {
	return errors.Is(err, kerr.FencedInstanceID) || errors.Is(err, kerr.GroupAuthorizationFailed) ||
		errors.Is(err, kerr.TopicAuthorizationFailed) || errors.Is(err, kerr.ClusterAuthorizationFailed)
}

// Ack marks records done. Acks for retired trackers are refused silently:
// their partitions now belong to someone else.
func (r *reader) Ack(records []*connector.Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var cur *chunk
	n := 0
	ack := func() {
		cur.ack(n)
		if r.bound != nil {
			// Refused acks count too: max_records counts records settled.
			r.bound.acked(topicPartition{cur.t.topic, cur.t.partition}, cur.t.next, n)
		}
	}
	for _, rec := range records {
		c, ok := rec.Origin.(*chunk)
		if !ok {
			continue
		}
		if c != cur {
			if cur != nil {
				ack()
			}
			cur, n = c, 0
		}
		n++
	}
	if cur != nil {
		ack()
	}
	r.ackedSinceCommit += len(records)
	if r.commitEvery > 0 && r.ackedSinceCommit >= r.commitEvery {
		select {
		case r.commitNow <- struct{}{}:
		default: // already asked
		}
	}
}

func (r *reader) commitLoop(interval time.Duration) {
	defer close(r.loopDone)
	t := time.NewTicker(interval)
	defer t.Stop()
	waiting := false // the last commit was refused by a rebalance under way
	for {
		select {
		case <-r.stopped:
			return
		case <-r.commitNow:
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := r.commit(ctx, nil)
		cancel()
		switch {
		case err == nil:
			waiting = false
		case errors.Is(err, kerr.RebalanceInProgress) || errors.Is(err, kerr.IllegalGeneration):
			// Between JoinGroup and SyncGroup the group takes no
			// commits; a group waiting for a dead leader's SyncGroup
			// stays so until its session ends. Said once, retried on
			// every tick.
			if !waiting {
				r.log.Warn("offsets wait for the rebalance to complete", "err", err)
				waiting = true
			}
		default:
			r.log.Warn("committing offsets", "err", err)
			metrics.Errors.WithLabelValues(r.pipeline, "commit").Inc()
		}
	}
}

// commit commits the committable position of every owned partition (or of
// only, when given: the revoke path) that moved since the last commit.
// Callers other than the revoke path must not hold commitMu.
func (r *reader) commit(ctx context.Context, only map[topicPartition]*partitionTracker) error {
	if only == nil {
		r.commitMu.Lock()
		defer r.commitMu.Unlock()
	}
	offsets := map[string]map[int32]kgo.EpochOffset{}
	var trackers []*partitionTracker
	r.mu.Lock()
	src := r.parts
	if only != nil {
		src = only
	} else {
		r.ackedSinceCommit = 0
	}
	for _, t := range src {
		if only == nil && t.retired {
			continue
		}
		off, changed := t.commitOffset()
		if !changed {
			continue
		}
		if offsets[t.topic] == nil {
			offsets[t.topic] = map[int32]kgo.EpochOffset{}
		}
		offsets[t.topic][t.partition] = kgo.EpochOffset{Epoch: -1, Offset: off}
		trackers = append(trackers, t)
	}
	r.mu.Unlock()
	if len(offsets) == 0 {
		return nil
	}
	start := time.Now()
	var commitErr error
	if r.classic {
		commitErr = r.commitInGeneration(ctx, offsets)
	} else {
		r.cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			if err != nil {
				commitErr = err
				return
			}
			commitErr = commitResponseError(resp)
		})
	}
	metrics.CommitSeconds.WithLabelValues(r.pipeline).Observe(time.Since(start).Seconds())
	if commitErr != nil {
		return commitErr
	}
	r.mu.Lock()
	for _, t := range trackers {
		if off := offsets[t.topic][t.partition].Offset; off > t.committed {
			t.committed = off
		}
	}
	r.mu.Unlock()
	return nil
}

// commitInGeneration sends the OffsetCommit itself, under the member id and
// generation the client holds now, instead of through CommitOffsetsSync.
// franz-go blocks every commit from JoinGroup until SyncGroup returns (to
// avoid REBALANCE_IN_PROGRESS), and a join waits for every member, a dead
// one until its session times out (45 s by default): survivors kept
// writing and could commit nothing for that long (issue 18). A classic
// group in PreparingRebalance accepts commits from its members under the
// current generation, and cooperative-sticky keeps the partitions a
// survivor still owns, so the committed position of those keeps moving.
// The few answers that only mean "a new generation is being formed"
// (REBALANCE_IN_PROGRESS between join and sync, ILLEGAL_GENERATION just
// after) are retried briefly with the generation reloaded; the commit
// loop tries again on its next tick anyway. Partitions given away are
// never in offsets: commit reads only trackers not retired, and
// onRevoked retires before its own final commit.
func (r *reader) commitInGeneration(ctx context.Context, offsets map[string]map[int32]kgo.EpochOffset) error {
	for attempt := 0; ; attempt++ {
		member, generation := r.cl.GroupMetadata()
		if member == "" {
			return errors.New("not a member of the group yet")
		}
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group = r.group
		req.MemberID = member
		req.Generation = generation
		req.InstanceID = r.instanceID
		ids, err := r.topicIDs(ctx, offsets)
		if err != nil {
			return err
		}
		for topic, ps := range offsets {
			rt := kmsg.NewOffsetCommitRequestTopic()
			rt.Topic = topic
			rt.TopicID = ids[topic] // OffsetCommit v10+ names topics by id
			for p, eo := range ps {
				rp := kmsg.NewOffsetCommitRequestTopicPartition()
				rp.Partition = p
				rp.Offset = eo.Offset
				rp.LeaderEpoch = eo.Epoch
				rp.Metadata = &req.MemberID
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = append(req.Topics, rt)
		}
		resp, err := req.RequestWith(ctx, r.cl)
		if err == nil {
			err = commitResponseError(resp)
		}
		if err == nil || attempt >= 3 || !(errors.Is(err, kerr.RebalanceInProgress) || errors.Is(err, kerr.IllegalGeneration)) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// topicIDs looks up the ids of the topics in offsets, from metadata the
// client fetched in the last minute when it has it. A broker without topic
// ids answers zero ids, and the client then speaks an OffsetCommit version
// that names topics.
func (r *reader) topicIDs(ctx context.Context, offsets map[string]map[int32]kgo.EpochOffset) (map[string][16]byte, error) {
	req := kmsg.NewPtrMetadataRequest()
	for topic := range offsets {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := r.cl.RequestCachedMetadata(ctx, req, time.Minute)
	if err != nil {
		return nil, fmt.Errorf("looking up topic ids: %w", err)
	}
	ids := make(map[string][16]byte, len(resp.Topics))
	for _, t := range resp.Topics {
		if t.Topic != nil {
			ids[*t.Topic] = t.TopicID
		}
	}
	return ids, nil
}

// commitPartitionError is a partition's error in an OffsetCommit answer.
type commitPartitionError struct {
	topic     string
	partition int32
	err       error
}

func (e *commitPartitionError) Error() string {
	return e.topic + "/" + strconv.Itoa(int(e.partition)) + ": " + e.err.Error()
}

func (e *commitPartitionError) Unwrap() error { return e.err }

// commitResponseError is the first partition error of an answer, or nil.
func commitResponseError(resp *kmsg.OffsetCommitResponse) error {
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if perr := kerr.ErrorForCode(p.ErrorCode); perr != nil {
				return &commitPartitionError{t.Topic, p.Partition, perr}
			}
		}
	}
	return nil
}

func (r *reader) onAssigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	if len(assigned) == 0 {
		return
	}
	r.mu.Lock()
	for topic, parts := range assigned {
		for _, p := range parts {
			t := newPartitionTracker(topic, p)
			t.r = r
			r.parts[topicPartition{topic, p}] = t
		}
	}
	r.waitingSince = time.Time{}
	r.mu.Unlock()
	r.log.Info("partitions assigned", "partitions", describe(assigned))
}

// onRevoked commits what is done for the revoked partitions, then retires
// their trackers. It blocks the rebalance until the commit returns, which
// is what lets the next owner start exactly where we stopped.
func (r *reader) onRevoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	if len(revoked) == 0 {
		return
	}
	if r.transactional {
		// Nothing to commit here: a transaction under way for these
		// partitions commits (and the next owner's offset fetch waits for
		// it) or aborts, fenced by the group's new generation.
		r.retire(revoked)
		r.log.Info("partitions revoked", "partitions", describe(revoked))
		return
	}
	r.awaitInFlight(ctx, revoked, revokeGrace)
	r.commitMu.Lock()
	defer r.commitMu.Unlock()
	gone := r.retire(revoked)
	if err := r.commit(ctx, gone); err != nil {
		r.log.Warn("committing offsets of revoked partitions", "partitions", describe(revoked), "err", err)
	}
	r.log.Info("partitions revoked", "partitions", describe(revoked))
}

// revokeGrace bounds how long a revoke waits for the records of the
// revoked partitions that are being written.
const revokeGrace = 10 * time.Second

// awaitInFlight gives the records of revoked partitions that are already
// on their way to the sink a chance to be acked, so their offsets are
// committed and the next owner does not read them again. The sink keeps
// writing meanwhile; only the rebalance waits, bounded by grace.
func (r *reader) awaitInFlight(ctx context.Context, parts map[string][]int32, grace time.Duration) {
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		select {
		case <-r.stopped:
			return // closing: whatever was going to be acked has been
		default:
		}
		pending := 0
		r.mu.Lock()
		for topic, ps := range parts {
			for _, p := range ps {
				if t := r.parts[topicPartition{topic, p}]; t != nil {
					pending += t.pending()
				}
			}
		}
		r.mu.Unlock()
		if pending == 0 {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// onLost retires trackers without committing: the group already gave the
// partitions away, a commit would be refused or, worse, overwrite the new
// owner's.
func (r *reader) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	if len(lost) == 0 {
		return
	}
	r.commitMu.Lock()
	defer r.commitMu.Unlock()
	r.retire(lost)
	r.log.Warn("partitions lost", "partitions", describe(lost))
}

func (r *reader) retire(parts map[string][]int32) map[topicPartition]*partitionTracker {
	gone := map[topicPartition]*partitionTracker{}
	r.mu.Lock()
	defer r.mu.Unlock()
	for topic, ps := range parts {
		for _, p := range ps {
			tp := topicPartition{topic, p}
			if t := r.parts[tp]; t != nil {
				gone[tp] = t
				delete(r.parts, tp)
				metrics.ConsumerLag.DeleteLabelValues(r.pipeline, topic, strconv.Itoa(int(p)))
			}
		}
	}
	if len(r.parts) == 0 && len(gone) > 0 {
		r.waitingSince = time.Now()
	}
	// Retire after the commit position is read by the caller: commit()
	// reads retired trackers only when passed them explicitly.
	for _, t := range gone {
		t.retired = true
	}
	return gone
}

// Close stops the commit loop, commits everything acked, and leaves the
// group (which revokes, committing again if anything moved meanwhile).
func (r *reader) Close(ctx context.Context) error {
	r.stopOnce.Do(func() { close(r.stopped) })
	if r.stopWatch != nil {
		r.stopWatch()
		<-r.watchDone
	}
	<-r.loopDone
	if r.lagDone != nil {
		<-r.lagDone
	}
	var err error
	if r.transactional {
		// Every batch committed its offsets in its transaction; the
		// writer is done, so no transaction is open.
		r.txnMu.Lock()
		if r.txn != nil {
			r.txn.cl.Close()
			r.txn = nil
		}
		r.txnMu.Unlock()
	} else {
		err = r.commit(ctx, nil)
	}
	r.cl.Close()
	if r.leave.Load() && r.instanceID != nil {
		if lerr := r.leaveStatic(ctx); lerr != nil {
			r.log.Warn("leaving the group as static member; its partitions move when its session times out",
				"group_instance_id", *r.instanceID, "err", lerr)
		}
	}
	if err != nil {
		return errors.New("final commit: " + err.Error())
	}
	return nil
}

// Pause stops fetching from every topic this member consumes.
func (r *reader) Pause() { r.cl.PauseFetchTopics(r.cl.GetConsumeTopics()...) }

// Resume undoes Pause.
func (r *reader) Resume() { r.cl.ResumeFetchTopics(r.cl.GetConsumeTopics()...) }

// Assigned lists owned partitions.
func (r *reader) Assigned() []connector.Assignment {
	r.mu.Lock()
	byTopic := map[string][]int32{}
	for tp := range r.parts {
		byTopic[tp.topic] = append(byTopic[tp.topic], tp.partition)
	}
	r.mu.Unlock()
	out := make([]connector.Assignment, 0, len(byTopic))
	for t, ps := range byTopic {
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
		out = append(out, connector.Assignment{Topic: t, Partitions: ps})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Topic < out[j].Topic })
	return out
}

// WaitingSince is when this member last owned no partition (it joined
// then, or lost or gave up its last one), zero while it owns some: a
// member of a group with more members than partitions waits, and so does
// one whose join waits for a dead member's session to end.
func (r *reader) WaitingSince() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.waitingSince
}

func describe(m map[string][]int32) string {
	topics := make([]string, 0, len(m))
	for t := range m {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	s := ""
	for i, t := range topics {
		if i > 0 {
			s += " "
		}
		ps := append([]int32(nil), m[t]...)
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
		s += t + "["
		for j, p := range ps {
			if j > 0 {
				s += ","
			}
			s += strconv.Itoa(int(p))
		}
		s += "]"
	}
	return s
}
