package bigquery

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	bq "cloud.google.com/go/bigquery"
	storage "cloud.google.com/go/bigquery/storage/apiv1"
	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"cloud.google.com/go/bigquery/storage/managedwriter"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/stats"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/gcp"
	"github.com/sluice-dev/sluice/internal/metrics"
)

// inFlightBytesPerConnection bounds the bytes of appends awaiting a result
// on one connection. managedwriter also reads it as a load signal: a
// connection with a fifth of it (or of max_in_flight_appends) in flight is
// loaded, and the pool grows, up to the connection limit.
const inFlightBytesPerConnection = 64 << 20

// clientKey identifies a shared client: every bigquery sink of the process
// with the same key appends through one managedwriter client, so the
// connection bound holds for the process, not per pipeline.
type clientKey struct {
	project, endpoint, restEndpoint, credentials string
	maxConnections, maxInFlight                  int
}

// sharedClient is the process's managedwriter client (Storage Write API,
// multiplexed) and REST client for one clientKey, reference counted.
//
// When BigQuery refuses an AppendRows stream for quota ("concurrent
// connections"), a refused stream stays refused for as long as the others
// hold the quota, and managedwriter keeps the writers it routed to it
// there. So the writer client is replaced by one with half the stream
// limit (a new generation). Writers of the old generation are reopened
// on the new client by their next append; the old client is closed once
// the appends in flight on it have their results (closing it earlier
// would turn appends BigQuery performed into retried, duplicated ones).
// When no stream has been refused for quotaRecover, the limit is doubled
// again toward max_connections the same way (the quota may have been taken
// by another process that has since gone); a refusal halves it again.
//
// Both clients are made on first use (each dials its own max_connections
// TCP connections): a process that writes at least once only dials the
// managedwriter client's, one that writes exactly once only the raw
// client's (see pendingClient).
type sharedClient struct {
	key     clientKey
	cfg     config.BigQuerySink
	log     *slog.Logger
	life    context.Context // the clients outlive the call that created them
	rest    *bq.Client
	streams *appendStreams // of every generation and the raw client
	refs    int            // guarded by clients.mu

	rawMu sync.Mutex
	raw   *storage.BigQueryWriteClient // PENDING streams; nil until first used

	mu       sync.Mutex
	cur      *generation // nil until first used
	limit    int
	draining int       // retired generations with appends in flight
	settled  time.Time // when the last retired generation was closed
	lowered  time.Time // the last quota refusal (or raise since); zero: never
}

// quotaRecover is how long the stream limit stays lowered after a quota
// refusal before it is raised again (a variable for tests).
var quotaRecover = 5 * time.Minute

// quotaSettle is how long after a replaced client closed refusals are
// still put down to its streams (the server frees them asynchronously,
// and a refused stream is only reported at its next append).
const quotaSettle = time.Second

// generation is one managedwriter client of a sharedClient.
type generation struct {
	mw       *managedwriter.Client
	inFlight int  // guarded by sharedClient.mu
	retired  bool // replaced: close when inFlight drops to 0
}

var clients = struct {
	mu sync.Mutex
	m  map[clientKey]*sharedClient
}{m: map[clientKey]*sharedClient{}}

func keyOf(cfg config.BigQuerySink) clientKey {
	return clientKey{
		project: cfg.Project, endpoint: cfg.Endpoint, restEndpoint: cfg.RESTEndpoint, credentials: cfg.CredentialsFile,
		maxConnections: cfg.MaxConnections, maxInFlight: cfg.MaxInFlightAppends,
	}
}

// acquireClient returns the shared client for cfg, creating it on first use.
func acquireClient(ctx context.Context, cfg config.BigQuerySink, log *slog.Logger) (*sharedClient, error) {
	k := keyOf(cfg)
	clients.mu.Lock()
	defer clients.mu.Unlock()
	if c := clients.m[k]; c != nil {
		c.refs++
		return c, nil
	}
	auth, err := authOptions(cfg)
	if err != nil {
		return nil, err
	}
	c := &sharedClient{key: k, cfg: cfg, log: log, limit: cfg.MaxConnections, refs: 1,
		life: context.WithoutCancel(ctx), streams: &appendStreams{pipelines: map[string]int{}}}
	restOpts := auth
	if cfg.RESTEndpoint != "" {
		restOpts = append([]option.ClientOption{option.WithEndpoint(cfg.RESTEndpoint)}, auth...)
	}
	if c.rest, err = bq.NewClient(c.life, cfg.Project, restOpts...); err != nil {
		return nil, fmt.Errorf("creating the BigQuery REST client: %w", err)
	}
	metrics.BigQueryConnectionLimit.WithLabelValues(cfg.Project).Set(float64(c.limit))
	clients.m[k] = c
	return c, nil
}

// authOptions are the credentials options: none for an emulator.
func authOptions(cfg config.BigQuerySink) ([]option.ClientOption, error) {
	if cfg.Plaintext() {
		return []option.ClientOption{option.WithoutAuthentication()}, nil
	}
	return gcp.Credentials(cfg.CredentialsFile, "sink.bigquery.credentials_file")
}

// newWriterClient builds a multiplexing managedwriter client whose TCP
// connections (the gRPC pool) are max_connections and whose AppendRows
// streams are at most limit, for every table.
func (c *sharedClient) newWriterClient(ctx context.Context, limit int) (*managedwriter.Client, error) {
	opts, err := c.grpcOptions()
	if err != nil {
		return nil, err
	}
	opts = append(opts,
		managedwriter.WithMultiplexing(),
		managedwriter.WithMultiplexPoolLimit(limit),
		managedwriter.WithDefaultInflightRequests(c.cfg.MaxInFlightAppends),
		managedwriter.WithDefaultInflightBytes(inFlightBytesPerConnection),
	)
	mw, err := managedwriter.NewClient(ctx, c.cfg.Project, opts...)
	if err != nil {
		return nil, fmt.Errorf("creating the Storage Write client: %w", err)
	}
	return mw, nil
}

// grpcOptions are the Storage Write API options of both clients:
// max_connections TCP connections, whose AppendRows streams appendStreams
// counts.
func (c *sharedClient) grpcOptions() ([]option.ClientOption, error) {
	opts := []option.ClientOption{
		option.WithGRPCConnectionPool(c.cfg.MaxConnections),
		option.WithGRPCDialOption(grpc.WithStatsHandler(c.streams)),
	}
	if c.cfg.Endpoint != "" {
		opts = append(opts, option.WithEndpoint(c.cfg.Endpoint))
	}
	if c.cfg.Plaintext() {
		opts = append(opts, option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	}
	auth, err := authOptions(c.cfg)
	if err != nil {
		return nil, err
	}
	return append(opts, auth...), nil
}

// pendingClient is the raw Storage Write client exactly-once drives its
// PENDING streams through, made on first use. Unlike managedwriter, it
// costs nothing per stream beside the RPCs themselves: no GetWriteStream
// after CreateWriteStream, no per-writer setup, no copy of each request.
func (c *sharedClient) pendingClient() (*storage.BigQueryWriteClient, error) {
	c.rawMu.Lock()
	defer c.rawMu.Unlock()
	if c.raw != nil {
		return c.raw, nil
	}
	opts, err := c.grpcOptions()
	if err != nil {
		return nil, err
	}
	raw, err := storage.NewBigQueryWriteClient(c.life, opts...)
	if err != nil {
		return nil, fmt.Errorf("creating the Storage Write client: %w", err)
	}
	c.raw = raw
	return raw, nil
}

// enter returns the current generation, counting one append in flight on
// it until the matching leave. The first call makes the writer client.
func (c *sharedClient) enter() (*generation, error) {
	c.mu.Lock()
	if c.cur == nil {
		mw, err := c.newWriterClient(c.life, c.limit)
		if err != nil {
			c.mu.Unlock()
			return nil, err
		}
		c.cur = &generation{mw: mw}
	}
	var old *generation
	if c.limit < c.cfg.MaxConnections && c.draining == 0 && !c.lowered.IsZero() && time.Since(c.lowered) >= quotaRecover {
		from := c.limit
		var err error
		if old, err = c.replace(min(2*c.limit, c.cfg.MaxConnections)); err != nil {
			c.log.Error("replacing the Storage Write client to raise its connection limit", "err", err)
		} else {
			c.log.Info("no Storage Write connection refused for quota lately; raising the connections this process may open",
				"project", c.cfg.Project, "from", from, "to", c.limit, "max_connections", c.cfg.MaxConnections)
		}
		c.lowered = time.Now() // the next step waits as long again
	}
	c.cur.inFlight++
	g := c.cur
	c.mu.Unlock()
	if old != nil {
		c.closeGeneration(old)
	}
	return g, nil
}

// replace puts a writer client with limit in place of the current one
// (c.mu held). It returns the old generation when it has no append in
// flight, for the caller to close once c.mu is released; otherwise the
// old one closes with its last append (leave).
func (c *sharedClient) replace(limit int) (closeNow *generation, err error) {
	mw, err := c.newWriterClient(context.Background(), limit)
	if err != nil {
		return nil, err
	}
	old := c.cur
	c.cur, c.limit = &generation{mw: mw}, limit
	old.retired = true
	metrics.BigQueryConnectionLimit.WithLabelValues(c.cfg.Project).Set(float64(limit))
	if old.inFlight == 0 {
		c.settled = time.Now()
		return old, nil
	}
	c.draining++
	return nil, nil
}

// leave ends an append entered on g, closing g if it was retired and this
// was its last append.
func (c *sharedClient) leave(g *generation) {
	c.mu.Lock()
	g.inFlight--
	last := g.retired && g.inFlight == 0
	if last {
		c.draining--
		c.settled = time.Now()
	}
	c.mu.Unlock()
	if last {
		c.closeGeneration(g)
	}
}

func (c *sharedClient) closeGeneration(g *generation) {
	// Closing cuts the old client's streams, giving their quota back.
	if err := g.mw.Close(); err != nil {
		c.log.Debug("closing a replaced Storage Write client", "err", err)
	}
}

// connectionLimit is the stream bound in force.
func (c *sharedClient) connectionLimit() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.limit
}

// quotaRefused lowers the stream limit after BigQuery refused a stream of
// generation g for quota. Only the first report per generation acts, and
// none while a replaced generation still holds streams: refusals then may
// be its streams' doing.
func (c *sharedClient) quotaRefused(ctx context.Context, g *generation, cause error) {
	c.mu.Lock()
	if g != c.cur || c.limit == 1 || c.draining > 0 || time.Since(c.settled) < quotaSettle {
		c.mu.Unlock()
		return
	}
	from, limit := c.limit, max(1, c.limit/2)
	old, err := c.replace(limit)
	if err != nil {
		c.mu.Unlock()
		c.log.Error("replacing the Storage Write client after a quota refusal", "err", err)
		return
	}
	c.lowered = time.Now()
	c.mu.Unlock()
	c.log.Warn("BigQuery refused a Storage Write connection for quota: max_connections is above what the project's "+
		"concurrent connections quota leaves this process; lowering the connections it opens (appends are retried, nothing is lost)",
		"project", c.cfg.Project, "max_connections", c.cfg.MaxConnections, "from", from, "to", limit, "err", cause)
	if old != nil {
		c.closeGeneration(old)
	}
}

// release drops a reference; the last one closes the clients.
func (c *sharedClient) release() error {
	clients.mu.Lock()
	c.refs--
	last := c.refs == 0
	if last {
		delete(clients.m, c.key)
	}
	clients.mu.Unlock()
	if !last {
		return nil
	}
	c.mu.Lock()
	cur := c.cur
	c.mu.Unlock()
	c.rawMu.Lock()
	raw := c.raw
	c.rawMu.Unlock()
	var errs []error
	if cur != nil {
		if err := cur.mw.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing the Storage Write client: %w", err))
		}
	}
	if raw != nil {
		if err := raw.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing the Storage Write client: %w", err))
		}
	}
	if err := c.rest.Close(); err != nil {
		errs = append(errs, fmt.Errorf("closing the BigQuery REST client: %w", err))
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// appendStreams counts a client's AppendRows streams in progress (what
// BigQuery's concurrent connections quota counts) and shows the count as
// sluice_sink_connections of every pipeline writing through the client:
// the streams are multiplexed, no pipeline owns one. managedwriter does
// not tell how many streams its pool has open, so gRPC does: appendStreams
// is the client connections' stats.Handler.
type appendStreams struct {
	mu        sync.Mutex
	open      int
	pipelines map[string]int // sinks of each pipeline using the client
}

// appendRowsStream marks the context of an AppendRows stream.
type appendRowsStream struct{}

// show exports the count for pipeline until the matching hide.
func (a *appendStreams) show(pipeline string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pipelines[pipeline]++
	metrics.SinkConnections.WithLabelValues(pipeline, "bigquery").Set(float64(a.open))
}

// hide removes pipeline's series once its last sink is closed.
func (a *appendStreams) hide(pipeline string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pipelines[pipeline]--; a.pipelines[pipeline] > 0 {
		return
	}
	delete(a.pipelines, pipeline)
	metrics.SinkConnections.DeleteLabelValues(pipeline, "bigquery")
}

func (a *appendStreams) add(delta int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.open += delta
	for p := range a.pipelines {
		metrics.SinkConnections.WithLabelValues(p, "bigquery").Set(float64(a.open))
	}
}

// TagRPC implements stats.Handler.
func (a *appendStreams) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	if info.FullMethodName == storagepb.BigQueryWrite_AppendRows_FullMethodName {
		return context.WithValue(ctx, appendRowsStream{}, true)
	}
	return ctx
}

// HandleRPC implements stats.Handler: gRPC reports an End for every Begin
// (per attempt), also for a stream that failed to open.
func (a *appendStreams) HandleRPC(ctx context.Context, s stats.RPCStats) {
	var delta int
	switch s.(type) {
	case *stats.Begin:
		delta = 1
	case *stats.End:
		delta = -1
	default:
		return // payloads: one per append, not counted
	}
	if ctx.Value(appendRowsStream{}) != nil {
		a.add(delta)
	}
}

// TagConn implements stats.Handler.
func (a *appendStreams) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}

// HandleConn implements stats.Handler.
func (a *appendStreams) HandleConn(context.Context, stats.ConnStats) {}
