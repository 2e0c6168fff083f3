package kafka

import (
	"errors"
	"fmt"
	"net"
	"reflect"
	"strconv"
	"sync"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// saslBrokerHook remembers which broker a client last authenticated with,
// so that a refusal can name it: kgo's error carries only the broker's
// message.
type saslBrokerHook struct {
	mu   sync.Mutex
	addr string
}

func (h *saslBrokerHook) OnBrokerE2E(meta kgo.BrokerMetadata, key int16, _ kgo.BrokerE2E) {
	if key != int16(kmsg.SASLAuthenticate) && key != int16(kmsg.SASLHandshake) {
		return
	}
	h.mu.Lock()
	h.addr = net.JoinHostPort(meta.Host, strconv.Itoa(int(meta.Port)))
	h.mu.Unlock()
}

func (h *saslBrokerHook) last() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.addr
}

// ExplainAuth turns a SASL refusal in err, from a client built with
// ConnOptions(c), into "authentication failed for user X on broker Y
// (SASL MECH): the broker's reason". Other errors are returned as they
// are. A refusal is permanent: a wrong password does not heal by waiting.
func ExplainAuth(cl *kgo.Client, c config.KafkaConn, err error) error {
	if err == nil || c.SASL == nil {
		return err
	}
	if !errors.Is(err, kerr.SaslAuthenticationFailed) && !errors.Is(err, kerr.UnsupportedSaslMechanism) && !errors.Is(err, kerr.IllegalSaslState) {
		return err
	}
	broker := ""
	// WithHooks' value is kgo's unexported []Hook type.
	for _, v := range cl.OptValues(kgo.WithHooks) {
		rv := reflect.ValueOf(v)
		if rv.Kind() != reflect.Slice {
			continue
		}
		for i := range rv.Len() {
			if h, ok := rv.Index(i).Interface().(*saslBrokerHook); ok {
				broker = h.last()
			}
		}
	}
	if broker == "" && len(c.Brokers) > 0 {
		broker = c.Brokers[0]
	}
	return &AuthError{Who: saslIdentity(c.SASL), Broker: broker, Mechanism: c.SASL.Mechanism, Err: err}
}

// AuthError is a broker's refusal of Sluice's SASL credentials.
type AuthError struct {
	Who       string // user X, client X, Google credentials of X
	Broker    string
	Mechanism string
	Err       error
}

func (e *AuthError) Error() string {
	return fmt.Sprintf("authentication failed for %s on broker %s (SASL %s): %v", e.Who, e.Broker, e.Mechanism, e.Err)
}

func (e *AuthError) Unwrap() error { return e.Err }

func saslIdentity(s *config.SASL) string {
	switch {
	case s.Mechanism != "OAUTHBEARER":
		return "user " + s.Username
	case s.Provider == "oidc":
		return "OAuth client " + s.ClientID
	case s.CredentialsFile != "":
		return "the Google credentials in " + s.CredentialsFile
	default:
		return "the Google Application Default Credentials"
	}
}
