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
	Kafka  *KafkaSource  `yaml:"kafka" doc:"A Kafka consumer group reading one or more topics."`
	PubSub *PubSubSource `yaml:"pubsub" doc:"A Google Pub/Sub subscription (see README, Pub/Sub -> Kafka)."`
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
	Brokers []string `yaml:"brokers" doc:"Seed brokers, host:port (required)." example:"[localhost:9092]"`
	TLS     *TLS     `yaml:"tls" doc:"TLS to the brokers; off when left out."`
	SASL    *SASL    `yaml:"sasl" doc:"SASL authentication; off when left out."`
}

// KafkaSource is a consumer group reading one or more topics.
type KafkaSource struct {
	KafkaConn  `yaml:",inline"`
	Topics     []string `yaml:"topics" doc:"Topics to consume (or topic_regex); a listed topic that does not exist is waited for, with a warning naming it once a minute." example:"[films]"`
	TopicRegex string   `yaml:"topic_regex" doc:"A regular expression choosing the topics to consume, instead of topics." example:"^films\\."`
	Group      string   `yaml:"group" doc:"Consumer group (required)." example:"films-copy"`
	Consumers  int      `yaml:"consumers" default:"1" zero:"refused" min:"1" max:"256" doc:"Group members in this process."`
	StartFrom  string   `yaml:"start_from" default:"earliest" enum:"earliest|latest" doc:"Where a group without committed offsets starts."`
	Isolation  string   `yaml:"isolation" default:"read_uncommitted" enum:"read_uncommitted|read_committed" doc:"read_committed skips aborted transactions and waits for open ones."`
	// GroupProtocol is the consumer group protocol: classic (JoinGroup /
	// SyncGroup, cooperative-sticky by default) or consumer (KIP-848, the
	// broker assigns; Kafka 4.0+). Kafka's group.protocol.
	GroupProtocol string `yaml:"group_protocol" default:"classic" enum:"classic|consumer" advanced:"true" doc:"Consumer group protocol: classic (JoinGroup/SyncGroup, cooperative-sticky) or consumer (KIP-848: the broker assigns partitions one by one; Kafka 4.0+). Kafka's group.protocol."`
	// Properties are Kafka consumer properties by their usual names
	// (max.poll.records, fetch.min.bytes, ...); see internal/connector/kafka.
	Properties map[string]any `yaml:"properties" advanced:"true" doc:"Kafka consumer properties by their usual names (max.poll.records, fetch.min.bytes, session.timeout.ms, commit.every.records, ...); see README, Configuration reference. Unknown or out-of-range properties are errors." example:"{max.poll.records: 500}"`
	// StopAt makes the read bounded (`stop_at: end`, or max_records /
	// max_read_time): the pipeline drains, commits and exits. Default
	// unset: read until stopped.
	StopAt *StopAt `yaml:"stop_at" doc:"A bounded read (backfill): end (the end offsets seen at start), or {max_records: N, max_read_time: 60s}; the pipeline drains, commits, prints what it moved and stops. Unset: read until stopped." example:"end"`
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
	Enabled            bool   `yaml:"enabled" doc:"Use TLS."`
	CAFile             string `yaml:"ca_file" doc:"PEM file of the CAs to trust; default: the system's."`
	CertFile           string `yaml:"cert_file" doc:"PEM client certificate (with key_file)."`
	KeyFile            string `yaml:"key_file" doc:"PEM private key of cert_file."`
	ServerName         string `yaml:"server_name" advanced:"true" doc:"Name to verify the server's certificate against; default: the host dialled."`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify" advanced:"true" doc:"Do not verify the server's certificate (tests only)."`
}

// SASL configures SASL authentication.
type SASL struct {
	Mechanism string `yaml:"mechanism" enum:"PLAIN|SCRAM-SHA-256|SCRAM-SHA-512|OAUTHBEARER" doc:"SASL mechanism (required)."`
	Username  string `yaml:"username" doc:"User name (PLAIN, SCRAM)."`
	Password  string `yaml:"password" secret:"true" doc:"Password (PLAIN, SCRAM)." example:"${KAFKA_PASSWORD}"`

	// OAUTHBEARER: where tokens come from. "google": Google Managed
	// Kafka's token from Application Default Credentials (or
	// CredentialsFile). "oidc": an OAuth 2.0 client-credentials grant at
	// TokenURL. Tokens are fetched again before they expire.
	Provider        string   `yaml:"provider" doc:"OAUTHBEARER token source: google (Google Managed Kafka, Application Default Credentials or credentials_file) or oidc (an OAuth 2.0 client-credentials grant at token_url)."`
	CredentialsFile string   `yaml:"credentials_file" doc:"provider google: a Google credentials JSON file; default: Application Default Credentials."`
	TokenURL        string   `yaml:"token_url" doc:"provider oidc: the token endpoint, http(s)."`
	ClientID        string   `yaml:"client_id" doc:"provider oidc: the client id."`
	ClientSecret    string   `yaml:"client_secret" secret:"true" doc:"provider oidc: the client secret." example:"${OIDC_SECRET}"`
	Scopes          []string `yaml:"scopes" doc:"provider oidc: the scopes to ask for."`
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
