package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/sluice-dev/sluice/internal/devstack"
	"github.com/spf13/cobra"
)

// devSASLPassword is the dev broker's SASL password unless
// SLUICE_DEV_SASL_PASSWORD says otherwise: a development default, not a
// secret.
const devSASLPassword = "sluice-dev"

type devFlags struct {
	host         string
	kafkaPort    int
	registryPort int
	brokers      int
	dataDir      string
	inMemory     bool
	syncWrites   bool
	autoCreate   bool

	bigQueryRESTPort, bigQueryGRPCPort int
	pubSubPort                         int
	tls                                bool
	sasl, saslUser                     string
	metricsPort                        int
}

func (f *devFlags) register(cmd *cobra.Command, defaultInMemory, defaultAutoCreate bool) {
	cmd.Flags().StringVar(&f.host, "host", "127.0.0.1", "address to listen on (loopback by default)")
	cmd.Flags().IntVar(&f.kafkaPort, "kafka-port", 9092, "Kafka broker port (3 brokers use this port and the next two)")
	cmd.Flags().IntVar(&f.registryPort, "registry-port", 8081, "Schema Registry port")
	cmd.Flags().IntVar(&f.brokers, "brokers", 1, "number of Kafka brokers: 1 or 3")
	if defaultInMemory {
		// In memory unless asked: naming a default directory here would
		// suggest data is kept there.
		cmd.Flags().StringVar(&f.dataDir, "data-dir", "", "keep broker data in this directory, to survive a restart (default: in memory)")
	} else {
		cmd.Flags().StringVar(&f.dataDir, "data-dir", "", "directory for broker data that survives a restart (default "+devstack.DefaultDataDir()+")")
	}
	cmd.Flags().BoolVar(&f.inMemory, "in-memory", defaultInMemory, "keep everything in memory (nothing survives a restart)")
	cmd.Flags().BoolVar(&f.syncWrites, "sync-writes", false, "fsync every produce before acking")
	cmd.Flags().BoolVar(&f.autoCreate, "auto-create-topics", defaultAutoCreate, "create a topic that does not exist when a producer (such as a pipeline's Kafka sink) asks for it, like Kafka's auto.create.topics.enable")
	cmd.Flags().IntVar(&f.bigQueryRESTPort, "bigquery-rest-port", 9050, "BigQuery emulator REST API port")
	cmd.Flags().IntVar(&f.bigQueryGRPCPort, "bigquery-grpc-port", 9060, "BigQuery emulator Storage Write API (gRPC) port")
	cmd.Flags().IntVar(&f.pubSubPort, "pubsub-port", 8085, "Pub/Sub emulator port (in memory only)")
	cmd.Flags().StringVar(&f.sasl, "sasl", "", "require SASL on the Kafka broker: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER (password from env SLUICE_DEV_SASL_PASSWORD, default "+devSASLPassword+")")
	cmd.Flags().StringVar(&f.saslUser, "sasl-user", "sluice", "the SASL user for PLAIN and SCRAM")
	cmd.Flags().BoolVar(&f.tls, "tls", false, "serve Kafka and the schema registry over TLS, with a CA and server certificate generated at start (the CA file's path is printed)")
	cmd.Flags().IntVar(&f.metricsPort, "metrics-port", 9308, "port serving the broker's own metrics at /metrics (bytes in and out per topic, connections, requests), under the Kafka JMX exporter's names; a taken port moves them to a free one, printed at start")
}

func (f *devFlags) options() devstack.Options {
	o := devstack.Options{Host: f.host, KafkaPort: f.kafkaPort, RegistryPort: f.registryPort, Brokers: f.brokers, SyncWrites: f.syncWrites, AutoCreateTopics: f.autoCreate}
	o.BigQueryRESTPort, o.BigQueryGRPCPort = f.bigQueryRESTPort, f.bigQueryGRPCPort
	o.PubSubPort = f.pubSubPort
	o.TLS = f.tls
	if f.sasl != "" {
		o.SASL = &devstack.SASL{Mechanism: strings.ToUpper(f.sasl), User: f.saslUser, Password: envOr("SLUICE_DEV_SASL_PASSWORD", devSASLPassword)}
	}
	o.MetricsPort = f.metricsPort
	if !f.inMemory || f.dataDir != "" {
		o.DataDir = f.dataDir
		if o.DataDir == "" {
			o.DataDir = devstack.DefaultDataDir()
		}
	}
	return o
}

func newDevCommand(g *globalFlags) *cobra.Command {
	f := &devFlags{}
	ps := &pubSubSetup{}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the embedded development stack (Kafka broker and emulators)",
		Long: `Dev runs, in one process and on loopback, a Kafka-protocol broker (franz-go's
kfake; any Kafka client works against it), a Confluent-compatible schema
registry, the BigQuery emulator and Google's Pub/Sub emulator (pstest; set
PUBSUB_EMULATOR_HOST to its address for other clients, and use
"sluice pubsub" to create topics and subscriptions and publish). The
broker counts what it sees (record bytes in and out per topic, connections,
requests by API and client id) and serves it at
http://127.0.0.1:9308/metrics (--metrics-port) under the names a Kafka JMX
exporter uses; "sluice monitor --metrics-url" charts it. Data is
kept on disk under --data-dir so topics, records and committed offsets
survive a restart (Pub/Sub keeps nothing); --in-memory opts out. Ctrl-C
stops it. With --auto-create-topics, a topic a producer asks for (a
pipeline's Kafka sink, kcat -P) is created on first use with 6
partitions, as Kafka's auto.create.topics.enable would.

Since the Pub/Sub emulator starts empty, --pubsub-subscription SUB:TOPIC
(and --pubsub-topic) create what a pipeline file reads before it runs.`,
		Example: `  sluice dev
  sluice dev --auto-create-topics
  sluice dev --brokers 3 --kafka-port 19092
  sluice dev --in-memory
  sluice dev --pubsub-subscription alerts-sluice:alerts   # what sluice-demo/pipelines.yaml reads
  sluice dev --tls          # Kafka and the registry over TLS; prints the CA file
  sluice dev --sasl SCRAM-SHA-256 --sasl-user films`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			subs, err := ps.parse()
			if err != nil {
				return err
			}
			ctx, stop := signalContext(cmd.Context())
			defer stop()
			o := f.options()
			o.Logger = log
			stack, err := devstack.Start(ctx, o)
			if err != nil {
				return err
			}
			defer stack.Close()
			printStack(cmd.OutOrStdout(), stack, o)
			if err := ps.apply(ctx, cmd.OutOrStdout(), stack, subs); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "Press Ctrl-C to stop.")
			<-ctx.Done()
			return nil
		},
	}
	f.register(cmd, false, false)
	ps.register(cmd)
	return cmd
}

func printStack(w io.Writer, s *devstack.Stack, o devstack.Options) {
	fmt.Fprintf(w, "Kafka broker(s)   %s\n", strings.Join(s.Brokers, ","))
	for _, e := range s.Endpoints() {
		fmt.Fprintf(w, "%-17s %s\n", e.Name, e.Addr)
	}
	if o.AutoCreateTopics {
		fmt.Fprintln(w, "Topics            created on first use (--auto-create-topics)")
	}
	if a := o.SASL; a != nil {
		if a.Mechanism == "OAUTHBEARER" {
			fmt.Fprintln(w, "SASL              OAUTHBEARER: Google Managed Kafka tokens and unexpired JWTs (signatures not verified)")
		} else {
			fmt.Fprintf(w, "SASL              %s, user %s (password from SLUICE_DEV_SASL_PASSWORD, default %s)\n", a.Mechanism, a.User, devSASLPassword)
		}
	}
	if t := s.TLSFiles; t.CAFile != "" {
		fmt.Fprintf(w, "TLS CA file       %s  (tls: {enabled: true, ca_file: %s})\n", t.CAFile, t.CAFile)
		fmt.Fprintf(w, "TLS server cert   %s, key %s  (for the admin API: admin: {cert_file: ..., key_file: ...})\n", t.CertFile, t.KeyFile)
	}
	if o.DataDir != "" {
		fmt.Fprintf(w, "Data directory    %s\n", o.DataDir)
	} else {
		fmt.Fprintln(w, "Data              in memory (lost on exit)")
	}
}
