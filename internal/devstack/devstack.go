// Package devstack runs Sluice's embedded development stack in one process,
// on loopback: a Kafka-protocol broker (franz-go's kfake), a schema
// registry, and the BigQuery and Pub/Sub emulators. `sluice dev` and `sluice demo` use it.
package devstack

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"

	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sluice-dev/sluice/internal/bqemu"
	"github.com/sluice-dev/sluice/internal/metrics"
)

// Options configure the stack. A zero port picks a free one.
type Options struct {
	Host      string // default 127.0.0.1
	KafkaPort int    // first broker's port; brokers use consecutive ports
	// RegistryPort is the schema registry's port; 0 picks a free one.
	RegistryPort int
	Brokers      int // 1 or 3
	// DataDir keeps broker data across restarts; empty means in memory.
	DataDir string
	Logger  *slog.Logger
	// SyncWrites fsyncs every produce before acking (slower, survives a
	// machine crash, not just a process crash).
	SyncWrites bool
	// AutoCreateTopics creates a topic that does not exist when a client
	// asks for it (Kafka's auto.create.topics.enable): producers, Sluice's
	// Kafka sink among them, ask; Sluice's consumers do not.
	AutoCreateTopics bool

	// BigQueryRESTPort and BigQueryGRPCPort are the BigQuery emulator's
	// REST and Storage Write (gRPC) ports; 0 picks a free one.
	BigQueryRESTPort, BigQueryGRPCPort int
	// PubSubPort is the Pub/Sub emulator's port; 0 picks a free one.
	PubSubPort int

	// TLS serves Kafka and the schema registry over TLS with a CA and
	// server certificate generated at start, written to TLSDir (default:
	// DataDir/tls, or a temporary directory when in memory).
	TLS    bool
	TLSDir string

	// SASL, when set, makes the broker require SASL authentication.
	SASL *SASL
	// KafkaOptions are more kfake options (tests: broker configs).
	KafkaOptions []kfake.Opt
	// MetricsPort serves the broker's own metrics (bytes in and out per
	// topic, connections, requests) in Prometheus format at /metrics;
	// 0 picks a free one.
	MetricsPort int
}

// Stack is a running dev stack.
type Stack struct {
	Kafka       *kfake.Cluster
	Brokers     []string
	RegistryURL string
	opts        Options
	closers     []func()
	endpoints   []Endpoint

	// BigQuery is the BigQuery emulator; BigQueryAddrs its gRPC and REST
	// addresses (host:port).
	BigQuery      *bqemu.Emulator
	BigQueryAddrs bqemu.Addrs

	// PubSub is the Pub/Sub emulator, at PubSubAddr (host:port).
	PubSub     *pstest.Server
	PubSubAddr string

	// TLSFiles are the generated CA and server certificate (Options.TLS).
	TLSFiles  TLSFiles
	serverTLS *tls.Config
	clientTLS *tls.Config // trusts TLSFiles.CAFile, for the stack's own clients
	// BrokerMetrics is what the brokers count about themselves, served
	// at MetricsURL.
	BrokerMetrics *metrics.BrokerMetrics
	MetricsURL    string
}

// DefaultDataDir is where `sluice dev` keeps data by default.
func DefaultDataDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "sluice", "dev")
}

// PortInUseError names a port that is taken and the flag that moves it.
type PortInUseError struct {
	What string
	Addr string
	Flag string
}

func (e *PortInUseError) Error() string {
	return fmt.Sprintf("%s cannot listen on %s: the port is in use (is another `sluice dev` running?); choose another with %s", e.What, e.Addr, e.Flag)
}

// CheckPort reports a *PortInUseError when addr cannot be bound.
func CheckPort(what, addr, flag string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return &PortInUseError{What: what, Addr: addr, Flag: flag}
		}
		return fmt.Errorf("%s cannot listen on %s: %w", what, addr, err)
	}
	return l.Close()
}

// Start starts the broker(s).
func Start(ctx context.Context, o Options) (*Stack, error) {
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Brokers == 0 {
		o.Brokers = 1
	}
	if o.Brokers != 1 && o.Brokers != 3 {
		return nil, fmt.Errorf("brokers must be 1 or 3, not %d", o.Brokers)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &Stack{opts: o}
	if o.TLS {
		if err := s.setUpTLS(); err != nil {
			return nil, err
		}
	}
	var ports []int
	for i := 0; i < o.Brokers; i++ {
		port := 0
		if o.KafkaPort != 0 {
			port = o.KafkaPort + i
			if err := CheckPort("the Kafka broker", net.JoinHostPort(o.Host, strconv.Itoa(port)), "--kafka-port"); err != nil {
				return nil, err
			}
		}
		ports = append(ports, port)
	}
	host := o.Host
	s.BrokerMetrics = metrics.NewBrokerMetrics()
	names := &topicNames{m: map[[16]byte]string{}}
	clients := &clientIDs{seen: map[string]bool{}}
	var nodes atomic.Int32 // kfake opens its listeners in node order
	kopts := []kfake.Opt{
		kfake.NumBrokers(o.Brokers),
		kfake.Ports(ports...),
		kfake.ListenFn(func(network, addr string) (net.Listener, error) {
			_, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			l, err := net.Listen(network, net.JoinHostPort(host, port))
			if err != nil {
				return nil, err
			}
			node := int(nodes.Add(1) - 1)
			if s.serverTLS != nil {
				// The counters read the Kafka protocol off the socket,
				// which TLS (layered on this listener) encrypts.
				return l, nil
			}
			return &countingListener{Listener: l, b: newBrokerCounters(s.BrokerMetrics, node, names, clients)}, nil
		}),
		kfake.DefaultNumPartitions(6),
	}
	if o.AutoCreateTopics {
		kopts = append(kopts, kfake.AllowAutoTopicCreation())
	}
	if s.serverTLS != nil {
		kopts = append(kopts, kfake.TLS(s.serverTLS))
	}
	kopts = append(kopts, o.KafkaOptions...)
	var gate *saslGate
	if o.SASL != nil {
		g, opts, err := newSASLGate(*o.SASL)
		if err != nil {
			return nil, err
		}
		gate = g
		kopts = append(kopts, opts...)
	}
	if o.DataDir != "" {
		dir := filepath.Join(o.DataDir, "kafka")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("creating data directory: %w", err)
		}
		kopts = append(kopts, kfake.DataDir(dir))
		if o.SyncWrites {
			kopts = append(kopts, kfake.SyncWrites())
		}
	}
	c, err := kfake.NewCluster(kopts...)
	if err != nil {
		return nil, fmt.Errorf("starting the Kafka broker: %w", err)
	}
	s.Kafka = c
	s.Brokers = c.ListenAddrs()
	s.closers = append(s.closers, c.Close)
	if gate != nil {
		if err := gate.install(ctx, c, s.clientTLS); err != nil {
			s.Close()
			return nil, err
		}
	}
	if err := s.startMetrics(); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.startRegistry(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.startBigQuery(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.startPubSub(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close stops everything, last started first.
func (s *Stack) Close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}

// Endpoint is a service of the stack other than the broker, for printing.
type Endpoint struct {
	Name string
	Addr string
}

// Endpoints lists the services beside the broker.
func (s *Stack) Endpoints() []Endpoint { return s.endpoints }

// setUpTLS generates the CA and server certificate into TLSDir.
func (s *Stack) setUpTLS() error {
	dir := s.opts.TLSDir
	switch {
	case dir != "":
	case s.opts.DataDir != "":
		dir = filepath.Join(s.opts.DataDir, "tls")
	default:
		tmp, err := os.MkdirTemp("", "sluice-dev-tls-")
		if err != nil {
			return fmt.Errorf("creating a directory for the dev certificates: %w", err)
		}
		dir = tmp
		s.closers = append(s.closers, func() { _ = os.RemoveAll(tmp) })
	}
	files, cfg, err := generateTLS(dir, s.opts.Host)
	if err != nil {
		return err
	}
	s.TLSFiles, s.serverTLS = files, cfg
	pool := x509.NewCertPool()
	pool.AddCert(cfg.Certificates[0].Leaf)
	s.clientTLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return nil
}
