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
	Project      string `yaml:"project"`
	Subscription string `yaml:"subscription"` // its ID, or projects/P/subscriptions/S
	// EmulatorHost is a Pub/Sub emulator's host:port (sluice dev:
	// 127.0.0.1:8085): no TLS, no credentials. Default: Google's service.
	EmulatorHost string `yaml:"emulator_host"`
	// CredentialsFile is a Google credentials JSON file; default:
	// application default credentials.
	CredentialsFile string `yaml:"credentials_file"`
	// KeyFrom says what becomes the record key: ordering_key (default),
	// message_id, attribute:NAME, or none.
	KeyFrom string `yaml:"key_from"`
	// Consumers is how many subscribers this process runs; default 1.
	Consumers int `yaml:"consumers"`
	// Streams is the number of streaming pulls per subscriber (the client's
	// NumGoroutines); default 4.
	Streams int `yaml:"streams"`
	// MaxOutstandingMessages and MaxOutstandingBytes bound the messages a
	// subscriber holds unacked (Pub/Sub's flow control); defaults 1000 and
	// 64 MiB.
	MaxOutstandingMessages int `yaml:"max_outstanding_messages"`
	MaxOutstandingBytes    int `yaml:"max_outstanding_bytes"`
	// MaxAckExtension bounds each extension of a held message's ack
	// deadline (the client's MaxDurationPerAckExtension), and so how long
	// the messages of a process that died stay leased before Pub/Sub
	// redelivers them; 10s-600s, default 60s. Left to the client, it
	// follows the 99th percentile of ack latency, up to 10 minutes.
	MaxAckExtension time.Duration `yaml:"max_ack_extension"`
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

func (p *PubSubSource) applyDefaults() {
	if p.KeyFrom == "" {
		p.KeyFrom = KeyFromOrderingKey
	}
	if p.Consumers == consumersUnset {
		p.Consumers = 1
	}
	if p.Streams == 0 {
		p.Streams = 4
	}
	if p.MaxOutstandingMessages == 0 {
		p.MaxOutstandingMessages = 1000
	}
	if p.MaxOutstandingBytes == 0 {
		p.MaxOutstandingBytes = 64 << 20
	}
	if p.MaxAckExtension == 0 {
		p.MaxAckExtension = time.Minute
	}
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
	v.positive("consumers", p.Consumers)
	v.positive("streams", p.Streams)
	v.positive("max_outstanding_messages", p.MaxOutstandingMessages)
	v.positive("max_outstanding_bytes", p.MaxOutstandingBytes)
	if p.MaxAckExtension < 10*time.Second || p.MaxAckExtension > 600*time.Second {
		v.add("max_ack_extension", fmt.Sprintf("%s is outside Pub/Sub's 10s-600s", p.MaxAckExtension))
	}
}

// PubSubSink publishes to a Google Pub/Sub topic (the `pubsub` sink key):
// the record's value is the message data byte for byte, its headers the
// attributes, and its key the ordering key (ordering_key: key, the
// default). A batch is durable when Pub/Sub has accepted every message.
type PubSubSink struct {
	Project string `yaml:"project"`
	// Topic is a template over the record ("{{.Topic}}", "alerts-{{.Value.kind}}")
	// naming a topic ID, or projects/P/topics/T.
	Topic           string `yaml:"topic"`
	EmulatorHost    string `yaml:"emulator_host"`
	CredentialsFile string `yaml:"credentials_file"`
	// OrderingKey is key (default: the record key, so one key's messages
	// are delivered in order to ordered subscriptions) or none.
	OrderingKey string `yaml:"ordering_key"`
}

func (p *PubSubSink) applyDefaults() {
	if p.OrderingKey == "" {
		p.OrderingKey = "key"
	}
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
	v.oneOf("ordering_key", p.OrderingKey, "key", "none")
	if p.EmulatorHost != "" && p.CredentialsFile != "" {
		v.add("credentials_file", "is not used with emulator_host")
	}
}
