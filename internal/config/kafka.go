package config

import (
	"fmt"
	"net/url"
	"regexp"
	"time"

	"gopkg.in/yaml.v3"
)

// Source is where records come from: exactly one key is set.
type Source struct {
	Kafka  *KafkaSource  `yaml:"kafka"`
	PubSub *PubSubSource `yaml:"pubsub"`
}

// Consumers is how many readers the source runs in this process.
func (s *Source) Consumers() int {
	switch {
	case s.Kafka != nil:
		return s.Kafka.Consumers
	case s.PubSub != nil:
		return s.PubSub.Consumers
	}
	return 1
}

// KafkaConn is how to reach a Kafka cluster.
type KafkaConn struct {
	Brokers []string `yaml:"brokers"`
	TLS     *TLS     `yaml:"tls"`
	SASL    *SASL    `yaml:"sasl"`
}

// KafkaSource is a consumer group reading one or more topics.
type KafkaSource struct {
	KafkaConn  `yaml:",inline"`
	Topics     []string `yaml:"topics"`
	TopicRegex string   `yaml:"topic_regex"`
	Group      string   `yaml:"group"`
	Consumers  int      `yaml:"consumers"`  // group members in this process; default 1
	StartFrom  string   `yaml:"start_from"` // earliest (default) | latest
	Isolation  string   `yaml:"isolation"`  // read_uncommitted (default) | read_committed
	// GroupProtocol is the consumer group protocol: classic (JoinGroup /
	// SyncGroup, cooperative-sticky by default) or consumer (KIP-848, the
	// broker assigns; Kafka 4.0+). Kafka's group.protocol.
	GroupProtocol string `yaml:"group_protocol"`
	// Properties are Kafka consumer properties by their usual names
	// (max.poll.records, fetch.min.bytes, ...); see internal/connector/kafka.
	Properties map[string]any `yaml:"properties"`
	// StopAt makes the read bounded (`stop_at: end`, or max_records /
	// max_read_time): the pipeline drains, commits and exits. Default
	// unset: read until stopped.
	StopAt *StopAt `yaml:"stop_at"`
}

// consumersUnset marks source.kafka.consumers as absent from the file
// between decoding and applyDefaults, so that an explicit 0 is refused by
// validation like -3 instead of becoming the default.
const consumersUnset = -1 << 31

// UnmarshalYAML decodes k, remembering whether consumers was given.
func (k *KafkaSource) UnmarshalYAML(n *yaml.Node) error {
	type plain KafkaSource // without this method
	p := plain{Consumers: consumersUnset}
	err := n.Decode(&p)
	*k = KafkaSource(p)
	return err
}

// TLS configures a TLS client. Files are PEM.
type TLS struct {
	Enabled            bool   `yaml:"enabled"`
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// SASL configures SASL authentication.
type SASL struct {
	Mechanism string `yaml:"mechanism"` // PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512 | OAUTHBEARER
	Username  string `yaml:"username"`
	Password  string `yaml:"password" secret:"true"`

	// OAUTHBEARER: where tokens come from. "google": Google Managed
	// Kafka's token from Application Default Credentials (or
	// CredentialsFile). "oidc": an OAuth 2.0 client-credentials grant at
	// TokenURL. Tokens are fetched again before they expire.
	Provider        string   `yaml:"provider"`
	CredentialsFile string   `yaml:"credentials_file"`
	TokenURL        string   `yaml:"token_url"`
	ClientID        string   `yaml:"client_id"`
	ClientSecret    string   `yaml:"client_secret" secret:"true"` // from ${ENV}
	Scopes          []string `yaml:"scopes"`
}

// DefaultGroupProtocol is source.kafka.group_protocol when unset; see
// BENCHMARKS.md (failover) for why.
const DefaultGroupProtocol = "classic"

func (s *Source) applyDefaults() {
	if k := s.Kafka; k != nil {
		if k.Consumers == consumersUnset {
			k.Consumers = 1
		}
		if k.StartFrom == "" {
			k.StartFrom = "earliest"
		}
		if k.Isolation == "" {
			k.Isolation = "read_uncommitted"
		}
		if k.GroupProtocol == "" {
			k.GroupProtocol = DefaultGroupProtocol
		}
	}
	if s.PubSub != nil {
		s.PubSub.applyDefaults()
	}
}

func (s *Source) validate(v *validator) {
	n := 0
	if s.Kafka != nil {
		n++
		s.Kafka.validate(v.sub("kafka"))
	}
	if s.PubSub != nil {
		n++
		s.PubSub.validate(v.sub("pubsub"))
	}
	if n != 1 {
		v.root().probs = append(v.root().probs, fmt.Sprintf("%s: exactly one source is needed (kafka or pubsub)", trimDot(v.prefix)))
	}
}

func (k *KafkaSource) validate(v *validator) {
	k.KafkaConn.validate(v)
	switch {
	case len(k.Topics) == 0 && k.TopicRegex == "":
		v.add("topics", "is required (or topic_regex)")
	case len(k.Topics) > 0 && k.TopicRegex != "":
		v.add("topic_regex", "cannot be used together with topics")
	case k.TopicRegex != "":
		if _, err := regexp.Compile(k.TopicRegex); err != nil {
			v.add("topic_regex", fmt.Sprintf("bad regular expression: %v", err))
		}
	}
	for i, t := range k.Topics {
		if t == "" {
			v.add(fmt.Sprintf("topics[%d]", i), "is empty")
		}
	}
	v.required("group", k.Group)
	if k.Consumers < 1 || k.Consumers > 256 {
		v.add("consumers", "must be between 1 and 256")
	}
	v.oneOf("start_from", k.StartFrom, "earliest", "latest")
	v.oneOf("isolation", k.Isolation, "read_uncommitted", "read_committed")
	v.oneOf("group_protocol", k.GroupProtocol, "classic", "consumer")
	if k.StopAt != nil {
		k.StopAt.validate(v)
	}
	for _, p := range ValidateConsumerProperties(k.Properties) {
		v.add("properties."+p.Name, p.Problem)
	}
}

func (c *KafkaConn) validate(v *validator) {
	if len(c.Brokers) == 0 {
		v.add("brokers", "is required, e.g. [localhost:9092]")
	}
	if c.TLS != nil {
		c.TLS.validate(v.sub("tls"))
	}
	if s := c.SASL; s != nil {
		s.validate(v.sub("sasl"))
	}
}

func (t *TLS) validate(v *validator) {
	if (t.CertFile == "") != (t.KeyFile == "") {
		v.add("cert_file", "cert_file and key_file go together")
	}
}

func trimDot(s string) string {
	if len(s) > 0 && s[len(s)-1] == '.' {
		return s[:len(s)-1]
	}
	return s
}

// durationMS is how Kafka properties spell durations.
func durationMS(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }

func (s *SASL) validate(v *validator) {
	v.oneOf("mechanism", s.Mechanism, "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")
	if s.Mechanism != "OAUTHBEARER" {
		v.required("username", s.Username)
		v.required("password", s.Password)
		for _, f := range []struct{ field, value string }{{"provider", s.Provider}, {"credentials_file", s.CredentialsFile}, {"token_url", s.TokenURL}, {"client_id", s.ClientID}} {
			if f.value != "" {
				v.add(f.field, "is only for mechanism OAUTHBEARER")
			}
		}
		return
	}
	if s.Username != "" || s.Password != "" {
		v.add("username", "OAUTHBEARER takes no username or password; set provider (google or oidc)")
	}
	switch s.Provider {
	case "google":
		if s.TokenURL != "" || s.ClientID != "" || s.ClientSecret != "" {
			v.add("provider", "google takes credentials_file (or Application Default Credentials), not token_url, client_id or client_secret")
		}
	case "oidc":
		v.required("token_url", s.TokenURL)
		if s.TokenURL != "" {
			if u, err := url.Parse(s.TokenURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				v.add("token_url", fmt.Sprintf("%q is not an http(s) URL", s.TokenURL))
			}
		}
		v.required("client_id", s.ClientID)
		v.required("client_secret", s.ClientSecret)
		if s.CredentialsFile != "" {
			v.add("credentials_file", "is only for provider google")
		}
	default:
		v.add("provider", fmt.Sprintf("%q is not one of google, oidc (required with OAUTHBEARER)", s.Provider))
	}
}
