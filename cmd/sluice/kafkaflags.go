package main

import (
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
type kafkaFlags struct {
	brokers []string
	tls     config.TLS
	sasl    config.SASL
}

func (k *kafkaFlags) register(f *pflag.FlagSet) {
	f.StringSliceVar(&k.brokers, "brokers", strings.Split(envOr("SLUICE_BROKERS", "127.0.0.1:9092"), ","), "Kafka brokers (env SLUICE_BROKERS)")
	f.BoolVar(&k.tls.Enabled, "tls", false, "connect with TLS (system roots unless --tls-ca-file)")
	f.StringVar(&k.tls.CAFile, "tls-ca-file", "", "PEM file of the CAs to trust (implies --tls)")
	f.StringVar(&k.tls.CertFile, "tls-cert-file", "", "client certificate for mutual TLS")
	f.StringVar(&k.tls.KeyFile, "tls-key-file", "", "client key for mutual TLS")
	f.StringVar(&k.tls.ServerName, "tls-server-name", "", "server name to verify instead of the broker's host")
	f.StringVar(&k.sasl.Mechanism, "sasl-mechanism", "", "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (password from env SLUICE_SASL_PASSWORD)")
	f.StringVar(&k.sasl.Username, "sasl-username", "", "SASL user name")
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
		c.SASL = &s
	}
	return c
}

// options are the client options of the flags, seed brokers included.
func (k *kafkaFlags) options() ([]kgo.Opt, error) {
	return kafka.ConnOptions(k.conn(), nil)
}
