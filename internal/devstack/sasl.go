package devstack

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/internal/gcp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

// SASL makes the dev broker require SASL authentication.
//
// kfake speaks PLAIN and SCRAM but closes the connection on a wrong
// password (the client sees EOF, not why) and has no OAUTHBEARER. The dev
// broker therefore checks every SaslAuthenticate itself first, through
// kfake's control hooks, and answers a failure the way Kafka does
// (SASL_AUTHENTICATION_FAILED with a message); what it accepts, kfake
// completes. OAUTHBEARER is mapped onto kfake's PLAIN stage: the handshake
// is taken as PLAIN, and a token that passes VerifyToken is replaced by
// the credentials of an internal user (random password, never shown).
type SASL struct {
	// Mechanism is PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER.
	Mechanism string
	// User and Password for PLAIN and SCRAM.
	User, Password string
	// VerifyToken checks an OAUTHBEARER token and returns its principal.
	// Default: DefaultTokenCheck.
	VerifyToken func(token string) (principal string, err error)
}

// scramIterations is kfake's (it answers every client with 4096).
const scramIterations = 4096

// DefaultTokenCheck is what `sluice dev --sasl OAUTHBEARER` accepts: a
// Google Managed Kafka token (checked as the service documents: header
// typ JWT and alg GOOG_OAUTH2_TOKEN, issuer Google, a principal, not
// expired; the access token inside is not verified with Google), or any
// other JWT with a subject and an expiry in the future (its signature is
// not verified: this is a development broker).
func DefaultTokenCheck(token string) (string, error) {
	now := time.Now()
	if strings.Count(token, ".") != 2 {
		return "", errors.New("the token is not a JWT")
	}
	head, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	if err == nil && bytes.Contains(head, []byte("GOOG_OAUTH2_TOKEN")) {
		c, err := gcp.DecodeKafkaToken(token, now)
		if err != nil {
			return "", err
		}
		return c.Subject, nil
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[1])
	if err != nil {
		return "", errors.New("the token's payload is not base64url")
	}
	var claims struct {
		Sub string  `json:"sub"`
		Exp float64 `json:"exp"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Sub == "" {
		return "", errors.New("the token has no subject")
	}
	if exp := time.Unix(int64(claims.Exp), 0); !exp.After(now) {
		return "", fmt.Errorf("the token expired at %s", exp.UTC().Format(time.RFC3339))
	}
	return claims.Sub, nil
}

// saslGate is the dev broker's SASL check, installed on kfake's control
// hooks for SaslHandshake and SaslAuthenticate.
type saslGate struct {
	cfg        SASL
	innerUser  string // PLAIN user kfake knows; OAUTHBEARER sessions become it
	innerPass  string
	salt       []byte // SCRAM: the salt kfake is given for cfg.User
	saltedPass []byte
	hash       func() hash.Hash

	mu     sync.Mutex
	firsts map[string]string // SCRAM client nonce -> client-first-message-bare
}

func newSASLGate(cfg SASL) (*saslGate, []kfake.Opt, error) {
	switch cfg.Mechanism {
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if cfg.User == "" || cfg.Password == "" {
			return nil, nil, fmt.Errorf("SASL %s needs a user and a password", cfg.Mechanism)
		}
	case "OAUTHBEARER":
		if cfg.VerifyToken == nil {
			cfg.VerifyToken = DefaultTokenCheck
		}
	default:
		return nil, nil, fmt.Errorf("SASL mechanism %q is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER", cfg.Mechanism)
	}
	g := &saslGate{cfg: cfg, innerUser: "sluice-dev-internal", innerPass: randomText(), firsts: map[string]string{}}
	opts := []kfake.Opt{kfake.EnableSASL(), kfake.Superuser("PLAIN", g.innerUser, g.innerPass)}
	switch cfg.Mechanism {
	case "PLAIN":
		opts = append(opts, kfake.Superuser("PLAIN", cfg.User, cfg.Password))
	case "SCRAM-SHA-256", "SCRAM-SHA-512":
		g.hash, g.salt = sha256.New, []byte(randomText())
		size := sha256.Size
		if cfg.Mechanism == "SCRAM-SHA-512" {
			g.hash, size = sha512.New, sha512.Size
		}
		var err error
		if g.saltedPass, err = pbkdf2.Key(g.hash, cfg.Password, g.salt, scramIterations, size); err != nil {
			return nil, nil, err
		}
		// The user is created with kfake's random salt; install replaces
		// it with g.salt, which the gate needs to check proofs.
		opts = append(opts, kfake.Superuser(cfg.Mechanism, cfg.User, cfg.Password))
	}
	return g, opts, nil
}

// install hooks the gate into c, and gives a SCRAM user the salt the gate
// knows (through the internal user, as any admin would).
func (g *saslGate) install(ctx context.Context, c *kfake.Cluster, clientTLS *tls.Config) error {
	c.ControlKey(int16(kmsg.SASLHandshake), g.handshake(c))
	c.ControlKey(int16(kmsg.SASLAuthenticate), g.authenticate(c))
	if g.saltedPass == nil {
		return nil
	}
	opts := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...), kgo.SASL(plain.Auth{User: g.innerUser, Pass: g.innerPass}.AsMechanism())}
	if clientTLS != nil {
		opts = append(opts, kgo.DialTLSConfig(clientTLS))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	mech := kadm.ScramSha256
	if g.cfg.Mechanism == "SCRAM-SHA-512" {
		mech = kadm.ScramSha512
	}
	res, err := kadm.NewClient(cl).AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: g.cfg.User, Mechanism: mech, Iterations: scramIterations, Salt: g.salt, SaltedPassword: g.saltedPass}})
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		return fmt.Errorf("setting up the SCRAM user: %w", err)
	}
	return nil
}

func (g *saslGate) handshake(c *kfake.Cluster) func(kmsg.Request) (kmsg.Response, error, bool) {
	return func(r kmsg.Request) (kmsg.Response, error, bool) {
		req := r.(*kmsg.SASLHandshakeRequest)
		if req.Mechanism == g.cfg.Mechanism || req.Mechanism == "PLAIN" {
			if req.Mechanism == "OAUTHBEARER" {
				req.Mechanism = "PLAIN" // see SASL
			}
			return nil, nil, false
		}
		c.KeepControl()
		resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		resp.SupportedMechanisms = []string{g.cfg.Mechanism}
		return resp, nil, true
	}
}

func (g *saslGate) authenticate(c *kfake.Cluster) func(kmsg.Request) (kmsg.Response, error, bool) {
	return func(r kmsg.Request) (kmsg.Response, error, bool) {
		req := r.(*kmsg.SASLAuthenticateRequest)
		msg := req.SASLAuthBytes
		var problem string
		switch {
		case bytes.HasPrefix(msg, []byte("n,")) && bytes.Contains(msg, []byte("\x01auth=")):
			problem = g.checkToken(req)
		case bytes.HasPrefix(msg, []byte("n,")):
			problem = g.scramFirst(msg)
		case bytes.HasPrefix(msg, []byte("c=")):
			problem = g.scramFinal(msg)
		default:
			problem = g.checkPlain(msg)
		}
		if problem == "" {
			return nil, nil, false // kfake completes what the gate accepted
		}
		c.KeepControl()
		resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		resp.ErrorMessage = &problem
		return resp, nil, true
	}
}

func (g *saslGate) checkPlain(msg []byte) string {
	parts := strings.SplitN(string(msg), "\x00", 3)
	if len(parts) != 3 {
		return "Authentication failed: malformed PLAIN message"
	}
	user, pass := parts[1], parts[2]
	if parts[0] != "" && parts[0] != user {
		return "Authentication failed: the authorization id is not the user name"
	}
	if user == g.innerUser && hmac.Equal([]byte(pass), []byte(g.innerPass)) {
		return ""
	}
	if g.cfg.Mechanism == "PLAIN" && user == g.cfg.User && hmac.Equal([]byte(pass), []byte(g.cfg.Password)) {
		return ""
	}
	return "Authentication failed: Invalid username or password"
}

func (g *saslGate) checkToken(req *kmsg.SASLAuthenticateRequest) string {
	if g.cfg.Mechanism != "OAUTHBEARER" {
		return "Authentication failed: OAUTHBEARER is not enabled"
	}
	var token string
	for _, kv := range strings.Split(string(req.SASLAuthBytes), "\x01") {
		if t, ok := strings.CutPrefix(kv, "auth=Bearer "); ok {
			token = t
		}
	}
	if token == "" {
		return "Authentication failed during authentication due to invalid credentials with SASL mechanism OAUTHBEARER: no bearer token"
	}
	if _, err := g.cfg.VerifyToken(token); err != nil {
		return "Authentication failed during authentication due to invalid credentials with SASL mechanism OAUTHBEARER: " + err.Error()
	}
	req.SASLAuthBytes = []byte("\x00" + g.innerUser + "\x00" + g.innerPass)
	return ""
}

var (
	scramFirstRE = regexp.MustCompile(`^n,(?:a=[^,]*)?,(n=([^,]*),r=([^,]+))$`)
	scramFinalRE = regexp.MustCompile(`^(c=[^,]*,r=([^,]+)),p=([A-Za-z0-9+/=]+)$`)
)

// scramFirst checks the user of a client-first-message and remembers it
// for the proof.
func (g *saslGate) scramFirst(msg []byte) string {
	m := scramFirstRE.FindSubmatch(msg)
	if m == nil || g.saltedPass == nil {
		return "Authentication failed during authentication due to invalid credentials with SASL mechanism " + g.cfg.Mechanism
	}
	user := strings.NewReplacer("=2C", ",", "=3D", "=").Replace(string(m[2]))
	if user != g.cfg.User {
		return "Authentication failed during authentication due to invalid credentials with SASL mechanism " + g.cfg.Mechanism
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.firsts) > 1000 {
		clear(g.firsts) // abandoned exchanges; a live one retries
	}
	g.firsts[string(m[3])] = string(m[1])
	return ""
}

// scramFinal checks the client's proof as the broker will (RFC 5802),
// knowing the salt and iterations kfake answered with.
func (g *saslGate) scramFinal(msg []byte) string {
	fail := "Authentication failed during authentication due to invalid credentials with SASL mechanism " + g.cfg.Mechanism
	m := scramFinalRE.FindSubmatch(msg)
	if m == nil {
		return fail
	}
	nonce := string(m[2])
	g.mu.Lock()
	var bare string
	for cn, b := range g.firsts {
		if strings.HasPrefix(nonce, cn) {
			bare = b
			delete(g.firsts, cn)
			break
		}
	}
	g.mu.Unlock()
	proof, err := base64.StdEncoding.DecodeString(string(m[3]))
	if bare == "" || err != nil || len(proof) != g.hash().Size() {
		return fail
	}
	serverFirst := fmt.Sprintf("r=%s,s=%s,i=%d", nonce, base64.StdEncoding.EncodeToString(g.salt), scramIterations)
	authMessage := bare + "," + serverFirst + "," + string(m[1])
	clientKey := hmacSum(g.hash, g.saltedPass, []byte("Client Key"))
	h := g.hash()
	h.Write(clientKey)
	storedKey := h.Sum(nil)
	signature := hmacSum(g.hash, storedKey, []byte(authMessage))
	for i := range proof {
		proof[i] ^= signature[i]
	}
	h = g.hash()
	h.Write(proof)
	if !hmac.Equal(h.Sum(nil), storedKey) {
		return fail
	}
	return ""
}

func hmacSum(h func() hash.Hash, key, data []byte) []byte {
	mac := hmac.New(h, key)
	mac.Write(data)
	return mac.Sum(nil)
}

func randomText() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
