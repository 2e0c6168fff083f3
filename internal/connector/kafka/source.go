package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/metrics"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Source is a Kafka consumer group; each reader it opens is one member.
type Source struct {
	pipeline string
	log      *slog.Logger
	offsets  connector.OffsetStore
	txn      bool

	mu    sync.Mutex
	cfg   config.KafkaSource
	props config.ConsumerProperties

	// missingEvery is how often readers look for topics that do not
	// exist, and how often the source warns about each at most.
	missingEvery  time.Duration
	missingWarned map[string]time.Time // guarded by mu

	bound *bound // stop_at; nil: unbounded

	// health follows the brokers through every reader's client.
	health *brokerHealth
}

// SourceOptions are what the source needs besides its config.
type SourceOptions struct {
	Pipeline string
	Logger   *slog.Logger
	// Offsets, when set (delivery: exactly_once), is where the sink keeps
	// offsets in its own transactions; every assignment resumes from it.
	Offsets connector.OffsetStore
	// Transactional (delivery: exactly_once into Kafka): the Kafka sink
	// commits offsets in its transactions (txn.go), so readers commit
	// nothing themselves, read committed data only, and wait for pending
	// transactional offsets when partitions are assigned.
	//
	// Both set (exactly-once routes to a database and a Kafka topic): each
	// sink keeps its own position, and a partition resumes from the lower
	// one (see adjustOffsets).
	Transactional bool
}

// NewSource checks cfg and returns a source. No connection is made until a
// reader is opened.
func NewSource(cfg config.KafkaSource, o SourceOptions) (*Source, error) {
	props, probs := config.ParseConsumerProperties(cfg.Properties)
	if len(probs) > 0 {
		return nil, fmt.Errorf("source.kafka.properties.%s: %s", probs[0].Name, probs[0].Problem)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &Source{pipeline: o.Pipeline, log: o.Logger, offsets: o.Offsets, txn: o.Transactional, cfg: cfg, props: props,
		missingEvery: time.Minute, missingWarned: map[string]time.Time{}, health: newBrokerHealth(o.Pipeline, cfg.SASL)}
	if cfg.StopAt != nil {
		if cfg.StopAt.End && len(cfg.Topics) == 0 {
			return nil, fmt.Errorf("source.kafka.stop_at: end needs topics (not topic_regex)")
		}
		s.bound = newBound(*cfg.StopAt, cfg.StartFrom)
	}
	return s, nil
}

// Describe implements connector.Describer: the topics and the group, for
// errors that stop the pipeline.
func (s *Source) Describe() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	topics := strings.Join(s.cfg.Topics, ", ")
	if s.cfg.TopicRegex != "" {
		topics = "matching " + s.cfg.TopicRegex
	}
	return fmt.Sprintf("Kafka topics %s (group %s, brokers %s)", topics, s.cfg.Group, strings.Join(s.cfg.Brokers, ","))
}

// Properties returns the consumer properties in force.
func (s *Source) Properties() map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]any, len(s.cfg.Properties))
	for k, v := range s.cfg.Properties {
		out[k] = v
	}
	return out
}

// SetProperties replaces consumer properties (merged over the current
// ones; a nil value removes one). Readers opened afterwards use them; the
// engine re-opens readers to apply them live.
func (s *Source) SetProperties(changes map[string]any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	merged := make(map[string]any, len(s.cfg.Properties)+len(changes))
	for k, v := range s.cfg.Properties {
		merged[k] = v
	}
	for k, v := range changes {
		if v == nil {
			delete(merged, k)
		} else {
			merged[k] = v
		}
	}
	props, probs := config.ParseConsumerProperties(merged)
	if len(probs) > 0 {
		return fmt.Errorf("%s: %s", probs[0].Name, probs[0].Problem)
	}
	s.cfg.Properties = merged
	s.props = props
	return nil
}

// SourceHealth implements connector.HealthReporter: whether the brokers
// answer the source's consumers.
func (s *Source) SourceHealth() connector.SourceHealth { return s.health.snapshot() }

// MaxPollRecords is max.poll.records, or 0 when unset.
func (s *Source) MaxPollRecords() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.props.MaxPollRecords
}

// OpenReader joins the group as member.
func (s *Source) OpenReader(ctx context.Context, member string) (connector.Reader, error) {
	s.mu.Lock()
	cfg, props := s.cfg, s.props
	s.mu.Unlock()
	r := &reader{
		log:           s.log.With("consumer", member),
		pipeline:      s.pipeline,
		member:        member,
		group:         cfg.Group,
		transactional: s.txn,
		txnFloor:      map[topicPartition]int64{},
		resetOffset:   kgo.NewOffset().AtStart(),
		parts:         map[topicPartition]*partitionTracker{},
		maxPoll:       props.MaxPollRecords,
		offsets:       s.offsets,
		clientSet:     make(chan struct{}),
		stopped:       make(chan struct{}),
		classic:       cfg.GroupProtocol != "consumer",
		commitEvery:   props.CommitEveryRecords,
		commitNow:     make(chan struct{}, 1),
		waitingSince:  time.Now(),
	}
	if cfg.StartFrom == "latest" {
		r.resetOffset = kgo.NewOffset().AtEnd()
	}
	if r.commitEvery == 0 {
		r.commitEvery = DefaultCommitEveryRecords
	}
	if s.bound != nil {
		// Before joining the group: the first assignment needs the ends.
		conn, err := ConnOptions(cfg.KafkaConn, s.log)
		if err != nil {
			return nil, err
		}
		if err := s.bound.setup(ctx, conn, cfg.Topics, s.txn || cfg.Isolation == "read_committed"); err != nil {
			return nil, err
		}
		r.bound = s.bound
		r.connOpts = conn // for the stop_at end probe's client (boundprobe.go)
	}
	if id := InstanceID(props.GroupInstanceID, member); id != "" {
		r.instanceID = &id
	}
	opts, err := s.clientOptions(cfg, props, r)
	if err != nil {
		return nil, err
	}
	opts = append(opts, kgo.WithHooks(metrics.KafkaClientHooks(s.pipeline, member)...), kgo.WithHooks(s.health))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("creating Kafka consumer: %w", err)
	}
	r.cl = cl
	close(r.clientSet) // adjustOffsets may run from now on
	pingCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := cl.Ping(pingCtx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("connecting to Kafka brokers %v: %w", cfg.Brokers, ExplainAuth(cl, cfg.KafkaConn, err))
	}
	if r.instanceID != nil {
		r.connOpts, _ = ConnOptions(cfg.KafkaConn, s.log) // succeeded in clientOptions
	}
	r.startLagLoop(s.txn || cfg.Isolation == "read_committed", lagRefreshEvery)
	interval := props.AutoCommitInterval
	if interval <= 0 {
		interval = time.Second
	}
	if len(cfg.Topics) > 0 { // a regex matches whatever exists
		watchCtx, stopWatch := context.WithCancel(context.WithoutCancel(ctx))
		r.stopWatch, r.watchDone = stopWatch, make(chan struct{})
		go r.watchTopics(watchCtx, cfg.Topics, s.missingEvery, s.warnMissing)
	}
	r.loopDone = make(chan struct{})
	if s.txn {
		close(r.loopDone) // offsets are committed in the sink's transactions
	} else {
		go r.commitLoop(interval)
	}
	return r, nil
}

// DefaultCommitEveryRecords is commit.every.records when unset: a commit
// at least after every default batch (batch.max_records).
const DefaultCommitEveryRecords = 10000

// warnMissing logs that topic does not exist, at most once per
// missingEvery whichever reader noticed.
func (s *Source) warnMissing(topic string) {
	s.mu.Lock()
	last, warned := s.missingWarned[topic]
	if warned && time.Since(last) < s.missingEvery {
		s.mu.Unlock()
		return
	}
	s.missingWarned[topic] = time.Now()
	brokers := s.cfg.Brokers
	s.mu.Unlock()
	s.log.Warn("source topic does not exist; nothing is read from it until it is created",
		"topic", topic, "brokers", strings.Join(brokers, ","))
}

// InstanceID is the group.instance.id (static membership) of the reader
// named member: the configured id followed by the member's name, or ""
// when none is configured. The group fences all but the newest member of
// an instance id, so every reader of a process needs its own; the name is
// stable (consumer names are "<pipeline>-1", "-2", ... and a restarted
// consumer keeps its name), so a restarted process rejoins as the same
// members without a rebalance. Two processes must still be configured
// with different ids (e.g. group.instance.id: ${HOSTNAME}).
func InstanceID(configured, member string) string {
	if configured == "" {
		return ""
	}
	return configured + "-" + member
}

func (s *Source) clientOptions(cfg config.KafkaSource, p config.ConsumerProperties, r *reader) ([]kgo.Opt, error) {
	opts, err := ConnOptions(cfg.KafkaConn, s.log)
	if err != nil {
		return nil, err
	}
	clientID := p.ClientID
	if clientID == "" {
		clientID = "sluice-" + s.pipeline
	}
	opts = append(opts,
		kgo.ClientID(clientID),
		kgo.ConsumerGroup(cfg.Group),
		kgo.DisableAutoCommit(), // offsets are committed by the ack tracker only
		kgo.OnPartitionsAssigned(r.onAssigned),
		kgo.OnPartitionsRevoked(r.onRevoked),
		kgo.OnPartitionsLost(r.onLost),
	)
	if cfg.TopicRegex != "" {
		if _, err := regexp.Compile(cfg.TopicRegex); err != nil {
			return nil, fmt.Errorf("source.kafka.topic_regex: %w", err)
		}
		opts = append(opts, kgo.ConsumeRegex(), kgo.ConsumeTopics(cfg.TopicRegex))
	} else {
		opts = append(opts, kgo.ConsumeTopics(cfg.Topics...))
	}
	if cfg.StartFrom == "latest" {
		opts = append(opts, kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()))
	} else {
		opts = append(opts, kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	}
	if cfg.Isolation == "read_committed" || s.txn {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	if cfg.StopAt != nil && cfg.StopAt.End {
		// The end offsets count transaction markers; Read uses them as
		// positions and hands none out (see bound.admit).
		opts = append(opts, kgo.KeepControlRecords())
	}
	// Exactly-once also needs fetched offsets to wait for pending
	// transactional commits (KIP-447): franz-go always asks for that now.
	opts = append(opts, kgo.AdjustFetchOffsetsFn(r.adjustAndBound))
	balancers := []kgo.GroupBalancer{kgo.CooperativeStickyBalancer()}
	if len(p.AssignmentStrategy) > 0 {
		balancers = balancers[:0]
		for _, name := range p.AssignmentStrategy {
			switch name {
			case "cooperative-sticky":
				balancers = append(balancers, kgo.CooperativeStickyBalancer())
			case "sticky":
				balancers = append(balancers, kgo.StickyBalancer())
			case "range":
				balancers = append(balancers, kgo.RangeBalancer())
			case "roundrobin":
				balancers = append(balancers, kgo.RoundRobinBalancer())
			}
		}
	}
	if cfg.GroupProtocol == "consumer" {
		// KIP-848: the broker assigns, with its range or uniform (sticky)
		// assignor; franz-go asks for it only with one of these two
		// balancers first. A broker without KIP-848 (before Kafka 4.0)
		// makes the client fall back to the classic protocol with them.
		balancers = []kgo.GroupBalancer{kgo.StickyBalancer()}
		if len(p.AssignmentStrategy) > 0 && p.AssignmentStrategy[0] == "range" {
			balancers = []kgo.GroupBalancer{kgo.RangeBalancer()}
		}
		opts = append(opts, kgo.ServerSideBalancer())
	}
	opts = append(opts, kgo.Balancers(balancers...))
	if p.FetchMinBytes > 0 {
		opts = append(opts, kgo.FetchMinBytes(p.FetchMinBytes))
	}
	if p.FetchMaxWait > 0 {
		opts = append(opts, kgo.FetchMaxWait(p.FetchMaxWait))
	}
	if p.FetchMaxBytes > 0 {
		opts = append(opts, kgo.FetchMaxBytes(p.FetchMaxBytes))
	}
	if p.MaxPartitionFetchBytes > 0 {
		opts = append(opts, kgo.FetchMaxPartitionBytes(p.MaxPartitionFetchBytes))
	}
	if p.SessionTimeout > 0 {
		opts = append(opts, kgo.SessionTimeout(p.SessionTimeout))
	}
	if p.HeartbeatInterval > 0 {
		opts = append(opts, kgo.HeartbeatInterval(p.HeartbeatInterval))
	}
	if p.RebalanceTimeout > 0 {
		opts = append(opts, kgo.RebalanceTimeout(p.RebalanceTimeout))
	}
	if r.instanceID != nil {
		opts = append(opts, kgo.InstanceID(*r.instanceID))
	}
	if p.ConnectionsMaxIdle > 0 {
		opts = append(opts, kgo.ConnIdleTimeout(p.ConnectionsMaxIdle))
	}
	if p.RequestTimeoutOverhead > 0 {
		opts = append(opts, kgo.RequestTimeoutOverhead(p.RequestTimeoutOverhead))
	}
	if p.MetadataMaxAge > 0 {
		opts = append(opts, kgo.MetadataMaxAge(p.MetadataMaxAge))
	}
	return opts, nil
}
