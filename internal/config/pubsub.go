package config

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// PubSubSource reads a Google Pub/Sub subscription (the `pubsub` source
// key). Messages pass through byte for byte: data is the value,
// attributes are headers, and the key is taken as key_from says. A
// message is acked to Pub/Sub only once the sink has made it durable.
type PubSubSource struct {
	Project      string `yaml:"project" doc:"The Google Cloud project of the subscription (required unless subscription is a full path)." example:"my-project"`
	Subscription string `yaml:"subscription" doc:"The subscription (required): its ID, or projects/P/subscriptions/S." example:"orders-sub"`
	// EmulatorHost is a Pub/Sub emulator's host:port (sluice dev:
	// 127.0.0.1:8085): no TLS, no credentials. Default: Google's service.
	EmulatorHost string `yaml:"emulator_host" doc:"A Pub/Sub emulator's host:port (sluice dev: 127.0.0.1:8085), spoken to without TLS and credentials; default: Google's service." example:"127.0.0.1:8085"`
	// CredentialsFile is a Google credentials JSON file; default:
	// application default credentials.
	CredentialsFile string `yaml:"credentials_file" doc:"A Google credentials JSON file; default: Application Default Credentials."`
	// KeyFrom says what becomes the record key: ordering_key (default),
	// message_id, attribute:NAME, or none.
	KeyFrom string `yaml:"key_from" default:"ordering_key" doc:"What becomes the record key: ordering_key, message_id, attribute:NAME or none."`
	// Consumers is how many subscribers this process runs; default 1.
	Consumers int `yaml:"consumers" default:"1" zero:"refused" min:"1" doc:"Subscribers this process runs."`
	// Streams is the number of streaming pulls per subscriber (the client's
	// NumGoroutines); default 4.
	Streams int `yaml:"streams" default:"4" min:"1" advanced:"true" doc:"Streaming pulls per subscriber (the client's NumGoroutines)."`
	// MaxOutstandingMessages and MaxOutstandingBytes bound the messages a
	// subscriber holds unacked (Pub/Sub's flow control); defaults 1000 and
	// 64 MiB.
	MaxOutstandingMessages int `yaml:"max_outstanding_messages" default:"1000" min:"1" advanced:"true" doc:"Messages a subscriber holds unacked (Pub/Sub's flow control)."`
	MaxOutstandingBytes    int `yaml:"max_outstanding_bytes" default:"64MiB" min:"1" advanced:"true" doc:"Bytes a subscriber holds unacked (Pub/Sub's flow control)."`
	// MaxAckExtension bounds each extension of a held message's ack
	// deadline (the client's MaxDurationPerAckExtension), and so how long
	// the messages of a process that died stay leased before Pub/Sub
	// redelivers them; 10s-600s, default 60s. Left to the client, it
	// follows the 99th percentile of ack latency, up to 10 minutes.
	MaxAckExtension time.Duration `yaml:"max_ack_extension" default:"60s" advanced:"true" doc:"Bound on each extension of a held message's ack deadline, and so on how long the messages of a process that died stay leased before Pub/Sub redelivers them; 10s-600s."`
}

// Key sources of a Pub/Sub message.
const (
	KeyFromOrderingKey = "ordering_key"
	KeyFromMessageID   = "message_id"
	KeyFromNone        = "none"
	keyFromAttribute   = "attribute:"
)

// KeyAttribute is the attribute key_from names ("" unless attribute:NAME).
func (p *PubSubSource) KeyAttribute() string {
	name, _ := strings.CutPrefix(p.KeyFrom, keyFromAttribute)
	if name == p.KeyFrom {
		return ""
	}
	return name
}

// SubscriptionPath is projects/P/subscriptions/S.
func (p *PubSubSource) SubscriptionPath() string {
	if strings.HasPrefix(p.Subscription, "projects/") {
		return p.Subscription
	}
	return fmt.Sprintf("projects/%s/subscriptions/%s", p.Project, p.Subscription)
}

var (
	pubsubProject = regexp.MustCompile(`^[a-z][a-z0-9.:-]{0,127}$`)
	// A subscription ID: 3-255 characters, starting with a letter.
	pubsubName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9._~+%-]{2,254}$`)
	pubsubPath = regexp.MustCompile(`^projects/[a-z][a-z0-9.:-]{0,127}/subscriptions/[A-Za-z][A-Za-z0-9._~+%-]{2,254}$`)
)

// UnmarshalYAML decodes p, remembering whether consumers was given, so
// that an explicit 0 is refused like -3 (see consumersUnset).
func (p *PubSubSource) UnmarshalYAML(n *yaml.Node) error {
	type plain PubSubSource // without this method
	v := plain{Consumers: consumersUnset}
	err := n.Decode(&v)
	*p = PubSubSource(v)
	return err
}

func (p *PubSubSource) validate(v *validator) {
	switch {
	case strings.HasPrefix(p.Subscription, "projects/"):
		if !pubsubPath.MatchString(p.Subscription) {
			v.add("subscription", fmt.Sprintf("%q is not projects/PROJECT/subscriptions/ID", p.Subscription))
		}
	case p.Subscription == "":
		v.add("subscription", "is required")
	case !pubsubName.MatchString(p.Subscription):
		v.add("subscription", fmt.Sprintf("%q is not a subscription ID (3-255 letters, digits, . _ ~ + %% -, starting with a letter)", p.Subscription))
	}
	if !strings.HasPrefix(p.Subscription, "projects/") {
		if p.Project == "" {
			v.add("project", "is required (or a full projects/P/subscriptions/S subscription)")
		} else if !pubsubProject.MatchString(p.Project) {
			v.add("project", fmt.Sprintf("%q is not a Google Cloud project ID", p.Project))
		}
	}
	switch {
	case p.KeyFrom == KeyFromOrderingKey, p.KeyFrom == KeyFromMessageID, p.KeyFrom == KeyFromNone:
	case strings.HasPrefix(p.KeyFrom, keyFromAttribute) && p.KeyAttribute() != "":
	default:
		v.add("key_from", fmt.Sprintf("%q is not one of ordering_key, message_id, none, attribute:NAME", p.KeyFrom))
	}
	if p.EmulatorHost != "" && p.CredentialsFile != "" {
		v.add("credentials_file", "is not used with emulator_host")
	}
	if p.MaxAckExtension < 10*time.Second || p.MaxAckExtension > 600*time.Second {
		v.add("max_ack_extension", fmt.Sprintf("%s is outside Pub/Sub's 10s-600s", p.MaxAckExtension))
	}
}

// PubSubSink publishes to a Google Pub/Sub topic (the `pubsub` sink key):
// the record's value is the message data byte for byte, its headers the
// attributes, and its key the ordering key (ordering_key: key, the
// default). A batch is durable when Pub/Sub has accepted every message.
type PubSubSink struct {
	Project string `yaml:"project" doc:"The Google Cloud project of the topic (required unless topic is a full path)." example:"my-project"`
	// Topic is a template over the record ("{{.Topic}}", "alerts-{{.Value.kind}}")
	// naming a topic ID, or projects/P/topics/T.
	Topic           string `yaml:"topic" doc:"Target topic (required), a template over the record naming a topic ID or projects/P/topics/T." example:"alerts-{{.Value.kind}}"`
	EmulatorHost    string `yaml:"emulator_host" doc:"A Pub/Sub emulator's host:port, spoken to without TLS and credentials; default: Google's service." example:"127.0.0.1:8085"`
	CredentialsFile string `yaml:"credentials_file" doc:"A Google credentials JSON file; default: Application Default Credentials."`
	// OrderingKey is key (default: the record key, so one key's messages
	// are delivered in order to ordered subscriptions) or none.
	OrderingKey string `yaml:"ordering_key" default:"key" enum:"key|none" doc:"key: the record key is the ordering key, so one key's messages reach ordered subscriptions in order; none: no ordering key."`
}

func (p *PubSubSink) validate(v *validator) {
	v.required("topic", p.Topic)
	v.template("topic", p.Topic)
	if !strings.HasPrefix(p.Topic, "projects/") {
		if p.Project == "" {
			v.add("project", "is required (or a topic of the form projects/P/topics/T)")
		} else if !pubsubProject.MatchString(p.Project) {
			v.add("project", fmt.Sprintf("%q is not a Google Cloud project ID", p.Project))
		}
	}
	if p.EmulatorHost != "" && p.CredentialsFile != "" {
		v.add("credentials_file", "is not used with emulator_host")
	}
}
