package bigquery

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	bq "cloud.google.com/go/bigquery"
	"cloud.google.com/go/bigquery/storage/managedwriter"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sluice-dev/sluice/internal/config"
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
// The limit only goes down, until the process restarts.
type sharedClient struct {
	key  clientKey
	cfg  config.BigQuerySink
	log  *slog.Logger
	rest *bq.Client
	refs int // guarded by clients.mu

	mu       sync.Mutex
	cur      *generation
	limit    int
	draining int       // retired generations with appends in flight
	settled  time.Time // when the last retired generation was closed
}

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
	c := &sharedClient{key: k, cfg: cfg, log: log, limit: cfg.MaxConnections, refs: 1}
	restOpts := auth
	if cfg.RESTEndpoint != "" {
		restOpts = append([]option.ClientOption{option.WithEndpoint(cfg.RESTEndpoint)}, auth...)
	}
	// The clients outlive the call that created them.
	life := context.WithoutCancel(ctx)
	if c.rest, err = bq.NewClient(life, cfg.Project, restOpts...); err != nil {
		return nil, fmt.Errorf("creating the BigQuery REST client: %w", err)
	}
	mw, err := c.newWriterClient(life, c.limit)
	if err != nil {
		c.rest.Close()
		return nil, err
	}
	c.cur = &generation{mw: mw}
	streamLimit.WithLabelValues(cfg.Project).Set(float64(c.limit))
	clients.m[k] = c
	return c, nil
}

// authOptions are the credentials options: none for an emulator.
func authOptions(cfg config.BigQuerySink) ([]option.ClientOption, error) {
	if cfg.Plaintext() {
		return []option.ClientOption{option.WithoutAuthentication()}, nil
	}
	if cfg.CredentialsFile == "" {
		return nil, nil // application default credentials
	}
	raw, err := os.ReadFile(cfg.CredentialsFile)
	if err != nil {
		return nil, fmt.Errorf("sink.bigquery.credentials_file: %w", err)
	}
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return nil, fmt.Errorf("sink.bigquery.credentials_file: %s is not a JSON credentials file: %w", cfg.CredentialsFile, err)
	}
	types := map[string]option.CredentialsType{
		"service_account":              option.ServiceAccount,
		"authorized_user":              option.AuthorizedUser,
		"impersonated_service_account": option.ImpersonatedServiceAccount,
		"external_account":             option.ExternalAccount,
	}
	t, ok := types[head.Type]
	if !ok {
		return nil, fmt.Errorf("sink.bigquery.credentials_file: credentials of type %q are not supported (service_account, authorized_user, impersonated_service_account, external_account)", head.Type)
	}
	return []option.ClientOption{option.WithAuthCredentialsJSON(t, raw)}, nil
}

// newWriterClient builds a multiplexing managedwriter client whose TCP
// connections (the gRPC pool) are max_connections and whose AppendRows
// streams are at most limit, for every table.
func (c *sharedClient) newWriterClient(ctx context.Context, limit int) (*managedwriter.Client, error) {
	opts := []option.ClientOption{
		option.WithGRPCConnectionPool(c.cfg.MaxConnections),
		managedwriter.WithMultiplexing(),
		managedwriter.WithMultiplexPoolLimit(limit),
		managedwriter.WithDefaultInflightRequests(c.cfg.MaxInFlightAppends),
		managedwriter.WithDefaultInflightBytes(inFlightBytesPerConnection),
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
	mw, err := managedwriter.NewClient(ctx, c.cfg.Project, append(opts, auth...)...)
	if err != nil {
		return nil, fmt.Errorf("creating the Storage Write client: %w", err)
	}
	return mw, nil
}

// enter returns the current generation, counting one append in flight on
// it until the matching leave.
func (c *sharedClient) enter() *generation {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cur.inFlight++
	return c.cur
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
	mw, err := c.newWriterClient(context.WithoutCancel(ctx), limit)
	if err != nil {
		c.mu.Unlock()
		c.log.Error("replacing the Storage Write client after a quota refusal", "err", err)
		return
	}
	old := c.cur
	c.cur, c.limit = &generation{mw: mw}, limit
	old.retired = true
	closeNow := old.inFlight == 0
	if closeNow {
		c.settled = time.Now()
	} else {
		c.draining++
	}
	c.mu.Unlock()
	streamLimit.WithLabelValues(c.cfg.Project).Set(float64(limit))
	c.log.Warn("BigQuery refused a Storage Write connection for quota: max_connections is above what the project's "+
		"concurrent connections quota leaves this process; lowering the connections it opens (appends are retried, nothing is lost)",
		"project", c.cfg.Project, "max_connections", c.cfg.MaxConnections, "from", from, "to", limit, "err", cause)
	if closeNow {
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
	mw := c.cur.mw
	c.mu.Unlock()
	var errs []error
	if err := mw.Close(); err != nil {
		errs = append(errs, fmt.Errorf("closing the Storage Write client: %w", err))
	}
	if err := c.rest.Close(); err != nil {
		errs = append(errs, fmt.Errorf("closing the BigQuery REST client: %w", err))
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}
