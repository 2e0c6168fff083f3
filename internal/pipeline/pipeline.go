// Package pipeline is the engine: it reads from a Source with N consumers,
// decodes, batches by count, bytes and linger, writes to a Sink, and acks
// records back to the source only once the sink has made them durable. It
// bounds what is in flight, routes bad records by on_error, retries
// transient failures, pauses and resumes, and drains on shutdown.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/metrics"
	"golang.org/x/sync/errgroup"
)

// OnError says what happens to a bad record.
type OnError string

const (
	OnErrorDLQ  OnError = "dlq"  // send to the dead-letter destination with the reason
	OnErrorFail OnError = "fail" // stop the pipeline with an error naming the record
	OnErrorSkip OnError = "skip" // count in a metric, log at Warn, move on
)

// Options configure a Pipeline.
type Options struct {
	Name      string
	Source    connector.Source
	Consumers int // consumers started by Run; default 1
	Decoder   connector.Decoder
	// Transformer, when set, runs on every decoded record before it is
	// batched; the records it drops are acked and counted as filtered.
	Transformer connector.Transformer
	Sink        connector.Sink
	DeadLetter  connector.DeadLetter // required for OnErrorDLQ
	OnError     OnError

	MaxPollRecords     int           // records per Read; default BatchRecords
	BatchRecords       int           // records per sink write; default 10000
	BatchBytes         int           // bytes per sink write; default 8 MiB
	Linger             time.Duration // how long a partial batch waits; default 50ms
	MaxInFlightRecords int           // default 50000
	MaxInFlightBytes   int           // default 64 MiB
	ShutdownTimeout    time.Duration // graceful drain bound; default 30s
	// MaxRetryTime bounds how long one write, decode or dead-letter send
	// is retried on transient errors, and how long a consumer's source
	// reads may go on failing (readretry.go), before the pipeline stops
	// with the error (a failure that does not heal is never retried
	// forever); default 10m, negative: no bound.
	MaxRetryTime time.Duration
	// Workers is the number of sink writers per consumer
	// (parallelism.workers); default 1. By says how records are spread
	// over them (see workers.go); empty: no parallelism, and Workers
	// must be 1. With ByKey or ByPartition every record gets its Slot.
	Workers int
	By      Distribution

	// Timestamp is the timestamp policy: which time records carry to the
	// sink and to the watermark; default: the source's timestamp.
	Timestamp TimestampPolicy
	// IdlePartitionTimeout: a partition with nothing in flight and
	// nothing read for this long does not hold the watermark back;
	// default 30s.
	IdlePartitionTimeout time.Duration
	// Clock is the time the engine reads for processing time, the
	// watermark and freshness; default time.Now (tests control it).
	Clock func() time.Time

	Logger *slog.Logger
}

func (o *Options) defaults() {
	if o.Consumers <= 0 {
		o.Consumers = 1
	}
	if o.Workers <= 0 {
		o.Workers = 1
	}
	if o.Decoder == nil {
		o.Decoder = undecoded{}
	}
	if o.OnError == "" {
		o.OnError = OnErrorFail
	}
	if o.BatchRecords <= 0 {
		o.BatchRecords = 10000
	}
	if o.BatchBytes <= 0 {
		o.BatchBytes = 8 << 20
	}
	if o.Linger <= 0 {
		o.Linger = 50 * time.Millisecond
	}
	if o.MaxPollRecords <= 0 {
		o.MaxPollRecords = o.BatchRecords
	}
	if o.MaxInFlightRecords <= 0 {
		o.MaxInFlightRecords = 50000
	}
	if o.MaxInFlightBytes <= 0 {
		o.MaxInFlightBytes = 64 << 20
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 30 * time.Second
	}
	if o.MaxRetryTime == 0 {
		o.MaxRetryTime = 10 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.IdlePartitionTimeout <= 0 {
		o.IdlePartitionTimeout = 30 * time.Second
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
}

// Pipeline moves records from a Source to a Sink. Create with New, then Run.
// Its control methods (Pause, Resume, AddConsumer, RemoveConsumer, Status)
// are safe to call from any goroutine while Run runs.
type Pipeline struct {
	opts    Options
	log     *slog.Logger
	limiter *inFlightLimiter
	stats   stats
	// eventTime follows event time per partition (watermark.go).
	eventTime *watermarks
	// spread is the number of workers the sink spreads each batch over
	// itself (connector.SpreadWriter), 0 when the engine's lanes do.
	spread int
	// sourceName names the source in errors (connector.Describer).
	sourceName string
	// readQuiet, readHealthy and readSweep are readretry.go's constants,
	// shorter in tests.
	readQuiet, readHealthy, readSweep time.Duration

	control chan controlRequest // AddConsumer requests, served by Run

	// membership serialises the operator's changes of the consumer set:
	// AddConsumer, RemoveConsumer and Reconfigure.
	membership sync.Mutex
	maxPoll    atomic.Int64           // records per Read; Reconfigure changes it
	restarts   map[*consumer]*restart // consumers Reconfigure is restarting; guarded by mu

	mu             sync.Mutex
	consumers      map[string]*consumer
	order          []string // consumer ids in start order
	nextID         int
	pauses         int           // nested pause holders
	operatorResume func()        // the admin API's pause, when held
	resumed        chan struct{} // closed while not paused
	pauseGen       uint64        // numbers the pauses: +1 each time one starts from not paused
	state          State
	retrying       retrying // what is being retried now, for status
	failure        error
	started        time.Time
}

// State is a pipeline's lifecycle state.
type State string

const (
	StateStarting State = "starting"
	StateRunning  State = "running"
	StatePaused   State = "paused"
	StateDraining State = "draining"
	StateStopped  State = "stopped"
	StateFailed   State = "failed"
)

type controlRequest struct {
	name  string
	reply chan error
}

// New validates opts and returns a pipeline ready to Run.
func New(opts Options) (*Pipeline, error) {
	opts.defaults()
	if opts.Name == "" || opts.Source == nil || opts.Sink == nil {
		return nil, errors.New("pipeline needs a name, a source and a sink")
	}
	switch opts.By {
	case "", ByKey, ByPartition, ByRoundRobin:
	default:
		return nil, fmt.Errorf("pipeline %s: unknown distribution %q", opts.Name, opts.By)
	}
	if opts.By == "" && opts.Workers > 1 {
		opts.By = ByKey
	}
	spread := 0
	if sw, ok := opts.Sink.(connector.SpreadWriter); ok && sw.SpreadsBatches() && opts.Workers > 1 {
		if opts.By == ByRoundRobin {
			return nil, fmt.Errorf("pipeline %s: the sink commits offsets per partition with each batch, which round_robin cannot keep: use by key or partition", opts.Name)
		}
		spread = opts.Workers
	}
	if opts.OnError == OnErrorDLQ && opts.DeadLetter == nil {
		return nil, fmt.Errorf("pipeline %s: on_error dlq needs a dead-letter destination", opts.Name)
	}
	resumed := make(chan struct{})
	close(resumed)
	p := &Pipeline{
		opts:      opts,
		spread:    spread,
		log:       opts.Logger.With("pipeline", opts.Name),
		limiter:   newInFlightLimiter(opts.MaxInFlightRecords, opts.MaxInFlightBytes),
		control:   make(chan controlRequest),
		consumers: map[string]*consumer{},
		resumed:   resumed,
		state:     StateStarting,

		sourceName:  "the source",
		readQuiet:   readQuiet,
		readHealthy: readHealthy,
		readSweep:   readSweep,
	}
	if d, ok := opts.Source.(connector.Describer); ok {
		p.sourceName = d.Describe()
	}
	p.stats.init(opts.Name)
	p.opts.Decoder = newStampingDecoder(opts.Decoder, opts.Timestamp, opts.Clock)
	p.eventTime = newWatermarks(opts.Name, opts.Clock, opts.IdlePartitionTimeout)
	p.maxPoll.Store(int64(opts.MaxPollRecords))
	if c, ok := opts.Sink.(connector.Controllable); ok {
		c.SetController(p)
	}
	return p, nil
}

// Name is the pipeline's name.
func (p *Pipeline) Name() string { return p.opts.Name }

// Run starts the consumers and moves records until ctx is done or the
// pipeline fails. On ctx done it drains: consumers stop reading, in-flight
// batches are written (bounded by ShutdownTimeout), acked offsets are
// committed. It returns nil after a clean drain.
func (p *Pipeline) Run(ctx context.Context) error {
	p.mu.Lock()
	p.started = time.Now()
	p.mu.Unlock()
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	// writeCtx outlives ctx by ShutdownTimeout so in-flight batches can
	// still be written and acked after a SIGTERM.
	writeCtx, cancelWrites := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWrites()
	stopTimer := context.AfterFunc(runCtx, func() {
		p.setState(StateDraining, nil)
		time.AfterFunc(p.opts.ShutdownTimeout, cancelWrites)
	})
	defer stopTimer()

	g, gctx := errgroup.WithContext(runCtx)
	var start func(name string) error
	start = func(name string) error {
		c, err := p.openConsumer(gctx, name)
		if err != nil {
			return err
		}
		g.Go(func() error {
			err := c.run(gctx, writeCtx)
			if rerr := p.reopenIfRestarting(gctx, c, err, start); rerr != nil {
				err = rerr
			}
			if err != nil {
				err = fmt.Errorf("consumer %s: %w", c.id, err)
				// One consumer failing stops the pipeline, as a signal
				// would: the others stop reading and their in-flight
				// batches drain within ShutdownTimeout. Cancelling only
				// gctx would leave their writes retrying on writeCtx,
				// which nothing would ever end.
				cancel(err)
			}
			return err
		})
		return nil
	}
	for i := 0; i < p.opts.Consumers; i++ {
		if err := start(""); err != nil {
			cancel(err)
			_ = g.Wait()
			p.setState(StateFailed, err)
			return err
		}
	}
	p.setState(StateRunning, nil)
	p.log.Info("pipeline started", "consumers", p.opts.Consumers)

	g.Go(func() error {
		for {
			select {
			case <-gctx.Done():
				return nil
			case req := <-p.control:
				req.reply <- start(req.name)
			}
		}
	})
	g.Go(func() error { return p.refreshEventTime(gctx) })
	g.Go(func() error { return p.endReadRuns(gctx) })
	if f, ok := p.opts.Source.(connector.Finisher); ok {
		g.Go(func() error {
			select {
			case <-gctx.Done():
			case <-f.Finished():
				// A bounded read is done: drain as on a signal, and
				// return nil once everything read is written and
				// committed.
				p.log.Info("bounded read complete; draining")
				cancel(nil)
			}
			return nil
		})
	}
	err := g.Wait()
	if err != nil && !errors.Is(err, context.Canceled) {
		p.setState(StateFailed, err)
		p.log.Error("pipeline failed", "err", err)
		return err
	}
	p.setState(StateStopped, nil)
	p.log.Info("pipeline stopped", "records_out", p.stats.recordsOut.Load())
	return nil
}

func (p *Pipeline) openConsumer(ctx context.Context, name string) (*consumer, error) {
	p.mu.Lock()
	p.nextID++
	if name == "" {
		name = fmt.Sprintf("%s-%d", p.opts.Name, p.nextID)
	}
	if _, dup := p.consumers[name]; dup {
		p.mu.Unlock()
		return nil, fmt.Errorf("consumer %q already exists", name)
	}
	p.mu.Unlock()
	r, err := p.opts.Source.OpenReader(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("opening consumer %s: %w", name, err)
	}
	c := newConsumer(p, name, r)
	p.mu.Lock()
	p.consumers[name] = c
	p.order = append(p.order, name)
	paused := p.pauses > 0
	p.mu.Unlock()
	if paused {
		if pr, ok := r.(connector.Pauser); ok {
			pr.Pause()
		}
	}
	metrics.Consumers.WithLabelValues(p.opts.Name).Inc()
	return c, nil
}

func (p *Pipeline) removeConsumer(c *consumer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if cur, ok := p.consumers[c.id]; !ok || cur != c {
		return
	}
	delete(p.consumers, c.id)
	for i, id := range p.order {
		if id == c.id {
			p.order = append(p.order[:i], p.order[i+1:]...)
			break
		}
	}
	metrics.Consumers.WithLabelValues(p.opts.Name).Dec()
}

// AddConsumer starts one more group member in this process; name may be
// empty. The group rebalances to give it partitions.
func (p *Pipeline) AddConsumer(ctx context.Context, name string) (string, error) {
	p.membership.Lock()
	defer p.membership.Unlock()
	return p.addConsumer(ctx, name)
}

// addConsumer asks Run to start a consumer; callers hold membership.
func (p *Pipeline) addConsumer(ctx context.Context, name string) (string, error) {
	req := controlRequest{name: name, reply: make(chan error, 1)}
	select {
	case p.control <- req:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	select {
	case err := <-req.reply:
		if err != nil {
			return "", err
		}
	case <-ctx.Done():
		return "", ctx.Err()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if name == "" && len(p.order) > 0 {
		name = p.order[len(p.order)-1]
	}
	return name, nil
}

// ErrNotFound is returned for an unknown consumer id.
var ErrNotFound = errors.New("not found")

// RemoveConsumer stops one consumer: it finishes its in-flight batches,
// commits, and leaves the group, which rebalances its partitions to the
// others. It returns once the consumer has stopped and is no longer listed.
func (p *Pipeline) RemoveConsumer(ctx context.Context, id string) error {
	p.membership.Lock()
	defer p.membership.Unlock()
	p.mu.Lock()
	c, ok := p.consumers[id]
	n := len(p.consumers)
	p.mu.Unlock()
	if !ok {
		return fmt.Errorf("consumer %q: %w", id, ErrNotFound)
	}
	if n == 1 {
		return errors.New("cannot remove the last consumer; pause the pipeline instead")
	}
	if l, ok := c.reader.(connector.Leaver); ok {
		l.LeaveOnClose() // for good: unlike Reconfigure's restarts
	}
	c.stop()
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *Pipeline) setState(s State, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == StateFailed {
		return
	}
	if s == StateRunning && p.pauses > 0 {
		// Paused while starting: the pause holds once started, until
		// it is resumed.
		s = StatePaused
	}
	p.setStateLocked(s)
	if err != nil {
		p.failure = err
	}
}

// setStateLocked sets the state and its gauge; callers hold mu.
func (p *Pipeline) setStateLocked(s State) {
	p.state = s
	for _, st := range []State{StateStarting, StateRunning, StatePaused, StateDraining, StateStopped, StateFailed} {
		v := 0.0
		if st == s {
			v = 1
		}
		metrics.PipelineState.WithLabelValues(p.opts.Name, string(st)).Set(v)
	}
}

// undecoded is the default Decoder (format raw): it leaves records as
// bytes.
type undecoded struct{}

func (undecoded) Decode(context.Context, *connector.Record) error { return nil }
