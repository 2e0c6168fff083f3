// Package kafka is Sluice's Kafka source (a consumer group that commits
// only what the sink made durable), sink (a producer that reports success
// only when every record is acked) and dead-letter destination, on franz-go.
package kafka

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"github.com/twmb/franz-go/plugin/kslog"
)

// ConnOptions turns brokers, TLS and SASL settings into client options.
func ConnOptions(c config.KafkaConn, log *slog.Logger) ([]kgo.Opt, error) {
	opts := []kgo.Opt{kgo.SeedBrokers(c.Brokers...)}
	if log != nil {
		opts = append(opts, kgo.WithLogger(quietLogger{kslog.New(log.With("component", "kafka-client"))}))
	}
	if c.TLS != nil {
		tc, err := TLSConfig(c.TLS)
		if err != nil {
			return nil, err
		}
		if tc != nil {
			opts = append(opts, kgo.DialTLSConfig(tc))
		}
	}
	if s := c.SASL; s != nil {
		opts = append(opts, kgo.WithHooks(&saslBrokerHook{}))
		switch s.Mechanism {
		case "PLAIN":
			opts = append(opts, kgo.SASL(plain.Auth{User: s.Username, Pass: s.Password}.AsMechanism()))
		case "SCRAM-SHA-256":
			opts = append(opts, kgo.SASL(scram.Auth{User: s.Username, Pass: s.Password}.AsSha256Mechanism()))
		case "SCRAM-SHA-512":
			opts = append(opts, kgo.SASL(scram.Auth{User: s.Username, Pass: s.Password}.AsSha512Mechanism()))
		case "OAUTHBEARER":
			opts = append(opts, kgo.SASL(oauthMechanism(s)))
		default:
			return nil, fmt.Errorf("sasl.mechanism %q is not supported", s.Mechanism)
		}
	}
	return opts, nil
}

// TLSConfig builds a client TLS config; nil when TLS is not asked for.
func TLSConfig(t *config.TLS) (*tls.Config, error) {
	if t == nil || (!t.Enabled && t.CAFile == "" && t.CertFile == "" && !t.InsecureSkipVerify) {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // opt-in by the user
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file %s: no PEM certificates found", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("loading tls.cert_file/key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// quietLogger passes on the client's warnings and errors only: its Info
// lines (every join, heartbeat loop, metadata refresh) would drown a
// healthy pipeline's quiet log. SLUICE_KAFKA_DEBUG=1 restores them.
type quietLogger struct{ *kslog.Logger }

func (q quietLogger) Level() kgo.LogLevel {
	if os.Getenv("SLUICE_KAFKA_DEBUG") != "" {
		return kgo.LogLevelDebug
	}
	return kgo.LogLevelWarn
}
