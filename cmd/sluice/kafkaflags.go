package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector/kafka"
	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kgo"
)

// kafkaFlags are the connection flags of the commands that talk to Kafka
// directly (topics, loadtest, monitor): the same brokers, TLS and SASL
// settings a pipeline file takes. The SASL password comes from the
// environment only, so it never shows in a process list or shell history.
//
// --command-config reads a Kafka client.properties file (bootstrap.servers,
// security.protocol, sasl.*, ssl.*, and producer settings for loadtest);
// a flag given on the command line wins over the file.
type kafkaFlags struct {
	brokers []string
	tls     config.TLS
	sasl    config.SASL

	configFile   string
	saslPassword string // from --config only
	flags        *pflag.FlagSet
	props        *config.ClientProperties
	loaded       bool
}

func (k *kafkaFlags) register(f *pflag.FlagSet) {
	k.flags = f
	f.StringVar(&k.configFile, "command-config", "", "Kafka client.properties file (as kafka-topics.sh --command-config): bootstrap.servers, security.protocol, sasl.*, ssl.* (PEM), and for loadtest linger.ms, batch.size, compression.type, acks; flags win over it")
	f.StringSliceVar(&k.brokers, "brokers", strings.Split(envOr("SLUICE_BROKERS", "127.0.0.1:9092"), ","), "Kafka brokers (env SLUICE_BROKERS)")
	f.BoolVar(&k.tls.Enabled, "tls", false, "connect with TLS (system roots unless --tls-ca-file)")
	f.StringVar(&k.tls.CAFile, "tls-ca-file", "", "PEM file of the CAs to trust (implies --tls)")
	f.StringVar(&k.tls.CertFile, "tls-cert-file", "", "client certificate for mutual TLS")
	f.StringVar(&k.tls.KeyFile, "tls-key-file", "", "client key for mutual TLS")
	f.StringVar(&k.tls.ServerName, "tls-server-name", "", "server name to verify instead of the broker's host")
	f.StringVar(&k.sasl.Mechanism, "sasl-mechanism", "", "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (password from env SLUICE_SASL_PASSWORD)")
	f.StringVar(&k.sasl.Username, "sasl-username", "", "SASL user name")
}

// load applies --config, once, under the flags given.
func (k *kafkaFlags) load() error {
	if k.loaded || k.configFile == "" {
		return nil
	}
	k.loaded = true
	cp, err := config.ReadClientProperties(k.configFile)
	if err != nil {
		return fmt.Errorf("--command-config: %w", err)
	}
	k.props = &cp
	changed := func(name string) bool { return k.flags != nil && k.flags.Changed(name) }
	if len(cp.Brokers) > 0 && !changed("brokers") {
		k.brokers = cp.Brokers
	}
	if cp.TLS != nil && !changed("tls") && !changed("tls-ca-file") && !changed("tls-cert-file") && !changed("tls-key-file") {
		k.tls = *cp.TLS
	}
	if cp.SASL != nil && !changed("sasl-mechanism") {
		k.sasl = config.SASL{Mechanism: cp.SASL.Mechanism, Username: cp.SASL.Username}
		k.saslPassword = cp.SASL.Password
	}
	if len(cp.Ignored) > 0 {
		fmt.Fprintf(os.Stderr, "--command-config: not used by this command: %s\n", strings.Join(cp.Ignored, ", "))
	}
	return nil
}

// producerProperties are the producer settings of --config, if any.
func (k *kafkaFlags) producerProperties() (map[string]string, error) {
	if err := k.load(); err != nil {
		return nil, err
	}
	if k.props == nil {
		return nil, nil
	}
	return k.props.Producer, nil
}

// conn is the flags as a pipeline's connection block.
func (k *kafkaFlags) conn() config.KafkaConn {
	c := config.KafkaConn{Brokers: k.brokers}
	if k.tls != (config.TLS{}) {
		t := k.tls
		c.TLS = &t
	}
	if k.sasl.Mechanism != "" {
		s := k.sasl
		s.Password = os.Getenv("SLUICE_SASL_PASSWORD")
		if s.Password == "" {
			s.Password = k.saslPassword
		}
		c.SASL = &s
	}
	return c
}

// options are the client options of the flags, seed brokers included.
// Read k.brokers after it: --config may set them.
func (k *kafkaFlags) options() ([]kgo.Opt, error) {
	if err := k.load(); err != nil {
		return nil, err
	}
	return kafka.ConnOptions(k.conn(), nil)
}
