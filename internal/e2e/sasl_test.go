package e2e

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector/kafka"
	"github.com/sluice-dev/sluice/internal/devstack"
	"github.com/sluice-dev/sluice/internal/gcp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// startSASLStack runs the dev stack with SASL, in memory, on free ports.
func startSASLStack(t *testing.T, s devstack.SASL, more ...kfake.Opt) *devstack.Stack {
	t.Helper()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	stack, err := devstack.Start(context.Background(), devstack.Options{SASL: &s, Logger: log, KafkaOptions: more})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stack.Close)
	return stack
}

// saslClient is a Kafka client with the pipeline file's connection
// settings, as Sluice builds them.
func saslClient(t *testing.T, conn config.KafkaConn) *kgo.Client {
	t.Helper()
	opts, err := kafka.ConnOptions(conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// runThroughSASL creates topic in, produces n records and runs a
// Kafka -> file pipeline with saslYAML (the sasl: block), all
// authenticated, until every record is in the file. keepGoing, when set,
// produces more while the pipeline runs until it says stop.
func runThroughSASL(t *testing.T, stack *devstack.Stack, conn config.KafkaConn, saslYAML string, n int) {
	t.Helper()
	cl := saslClient(t, conn)
	ctx := context.Background()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 3, 1, nil, "in"); err != nil {
		t.Fatal(err)
	}
	produce := func(from, to int) {
		for i := from; i < to; i++ {
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "in", Value: []byte(fmt.Sprintf(`{"id":%d}`, i))}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	produce(0, n/2)
	out := filepath.Join(t.TempDir(), "out.jsonl")
	runPipeline(t, fmt.Sprintf(`
name: sasl
source:
  kafka: {brokers: [%s], topics: [in], group: sasl, sasl: %s}
sink:
  file: {path: %q}
`, stack.Brokers[0], saslYAML, out))
	produce(n/2, n)
	eventually(t, 60*time.Second, fmt.Sprintf("%d records in the file", n), func() bool { return len(readLines(t, out)) >= n })
}

// TestSASLPlainAndSCRAMEndToEnd: the dev broker requires each mechanism,
// a pipeline authenticates and delivers every record, and a wrong
// password is reported as "authentication failed for user X on broker Y"
// (kfake closed the connection and the user saw EOF).
func TestSASLPlainAndSCRAMEndToEnd(t *testing.T) {
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			stack := startSASLStack(t, devstack.SASL{Mechanism: mech, User: "films", Password: "s3cret-pw"})
			conn := config.KafkaConn{Brokers: stack.Brokers, SASL: &config.SASL{Mechanism: mech, Username: "films", Password: "s3cret-pw"}}
			runThroughSASL(t, stack, conn, fmt.Sprintf(`{mechanism: %s, username: films, password: s3cret-pw}`, mech), 200)

			for _, bad := range []config.SASL{
				{Mechanism: mech, Username: "films", Password: "wrong-pw"},
				{Mechanism: mech, Username: "nobody", Password: "s3cret-pw"},
			} {
				src, err := kafka.NewSource(config.KafkaSource{KafkaConn: config.KafkaConn{Brokers: stack.Brokers, SASL: &bad}, Topics: []string{"in"}, Group: "g"}, kafka.SourceOptions{Pipeline: "bad"})
				if err != nil {
					t.Fatal(err)
				}
				_, err = src.OpenReader(context.Background(), "m")
				want := fmt.Sprintf("authentication failed for user %s on broker %s (SASL %s)", bad.Username, stack.Brokers[0], mech)
				if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "EOF") {
					t.Fatalf("opening with %s/%s: %v; want %q", bad.Username, bad.Password, err, want)
				}
				if strings.Contains(err.Error(), bad.Password) {
					t.Fatalf("the error shows the password: %v", err)
				}
			}
		})
	}
}

// tokenEndpoint is an OAuth 2.0 token endpoint for one client: it issues
// opaque tokens that expire after lifetime and says whether a token is
// one it issued and still valid.
type tokenEndpoint struct {
	*httptest.Server
	lifetime time.Duration
	mu       sync.Mutex
	issued   map[string]time.Time
	grants   atomic.Int64
}

func newOIDCEndpoint(t *testing.T, clientID, secret, scope string, lifetime time.Duration) *tokenEndpoint {
	e := &tokenEndpoint{lifetime: lifetime, issued: map[string]time.Time{}}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, pw, ok := r.BasicAuth()
		if r.Method != http.MethodPost || r.ParseForm() != nil || r.PostForm.Get("grant_type") != "client_credentials" {
			http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		if !ok || id != clientID || pw != secret {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"invalid_client","error_description":"bad client credentials"}`)
			return
		}
		if r.PostForm.Get("scope") != scope {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"invalid_scope"}`)
			return
		}
		tok := e.issue()
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":%d}`, tok, int(lifetime.Seconds()))
	}))
	t.Cleanup(e.Close)
	return e
}

func (e *tokenEndpoint) issue() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	tok := "ya29." + base64.RawURLEncoding.EncodeToString(b)
	e.mu.Lock()
	e.issued[tok] = time.Now().Add(e.lifetime)
	e.mu.Unlock()
	e.grants.Add(1)
	return tok
}

func (e *tokenEndpoint) check(tok string) error {
	e.mu.Lock()
	exp, ok := e.issued[tok]
	e.mu.Unlock()
	switch {
	case !ok:
		return fmt.Errorf("unknown token")
	case time.Now().After(exp):
		return fmt.Errorf("the token expired")
	}
	return nil
}

// TestSASLOAuthBearerOIDCEndToEnd: a client-credentials provider gets a
// token from the token endpoint; the dev broker (which in kfake has no
// OAUTHBEARER: see devstack.SASL) accepts only tokens that endpoint issued
// and that have not expired. Tokens live 3 s and the broker makes clients
// authenticate again every second, so the pipeline keeps delivering only
// if tokens are fetched again before they expire.
func TestSASLOAuthBearerOIDCEndToEnd(t *testing.T) {
	endpoint := newOIDCEndpoint(t, "sluice-films", "client-s3cret", "kafka.read kafka.write", 3*time.Second)
	var verified sync.Map // token -> true, each verified
	stack := startSASLStack(t, devstack.SASL{Mechanism: "OAUTHBEARER", VerifyToken: func(tok string) (string, error) {
		if err := endpoint.check(tok); err != nil {
			return "", err
		}
		verified.Store(tok, true)
		return "sluice-films", nil
	}}, kfake.BrokerConfigs(map[string]string{"connections.max.reauth.ms": "1000"}))
	s := &config.SASL{Mechanism: "OAUTHBEARER", Provider: "oidc", TokenURL: endpoint.URL + "/token", ClientID: "sluice-films", ClientSecret: "client-s3cret", Scopes: []string{"kafka.read", "kafka.write"}}
	conn := config.KafkaConn{Brokers: stack.Brokers, SASL: s}
	t.Setenv("SLUICE_TEST_OIDC_SECRET", "client-s3cret")
	saslYAML := fmt.Sprintf(`{mechanism: OAUTHBEARER, provider: oidc, token_url: %q, client_id: sluice-films, client_secret: "client-s3cret", scopes: [kafka.read, kafka.write]}`, s.TokenURL)
	start := time.Now()
	runThroughSASL(t, stack, conn, saslYAML, 100)

	// Keep the clients busy past two token lifetimes.
	cl := saslClient(t, conn)
	for time.Since(start) < 7*time.Second {
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "in", Value: []byte(`{"id":-1}`)}).FirstErr(); err != nil {
			t.Fatalf("producing %v after start: %v", time.Since(start).Round(time.Second), err)
		}
		time.Sleep(200 * time.Millisecond) // pacing the producer, not waiting for a result
	}
	// The clients authenticated again every second, each time with a
	// token still valid: more distinct tokens were used than clients.
	used := 0
	verified.Range(func(_, _ any) bool { used++; return true })
	if used < 5 {
		t.Fatalf("the broker saw %d distinct tokens (%d issued) in 7 s of 3 s tokens from 3 clients; want tokens fetched again before expiry", used, endpoint.grants.Load())
	}

	bad := *s
	bad.ClientSecret = "wrong"
	src, _ := kafka.NewSource(config.KafkaSource{KafkaConn: config.KafkaConn{Brokers: stack.Brokers, SASL: &bad}, Topics: []string{"in"}, Group: "g"}, kafka.SourceOptions{Pipeline: "bad"})
	_, err := src.OpenReader(context.Background(), "m")
	if err == nil || !strings.Contains(err.Error(), "invalid_client") || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("a wrong client secret: %v; want the endpoint's invalid_client, without the secret", err)
	}
}

// TestSASLOAuthBearerGoogleEndToEnd: provider google builds the token
// Google Managed Kafka documents from a service account credentials file
// (its token_uri points at a test endpoint standing in for Google's): the
// dev broker checks the token's header, issuer, subject (the service
// account's email) and expiry, and that the access token inside is one
// the endpoint issued. Also through Application Default Credentials
// (GOOGLE_APPLICATION_CREDENTIALS).
func TestSASLOAuthBearerGoogleEndToEnd(t *testing.T) {
	const email = "sluice@demo-project.iam.gserviceaccount.com"
	endpoint := &tokenEndpoint{lifetime: time.Hour, issued: map[string]time.Time{}}
	endpoint.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ParseForm() != nil || r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" || r.PostForm.Get("assertion") == "" {
			http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3600}`, endpoint.issue())
	}))
	t.Cleanup(endpoint.Close)

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	credFile := filepath.Join(t.TempDir(), "sa.json")
	raw, _ := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "demo-project", "private_key_id": "k1",
		"private_key": string(keyPEM), "client_email": email, "client_id": "1",
		"token_uri": endpoint.URL + "/token",
	})
	if err := os.WriteFile(credFile, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	var principals sync.Map
	stack := startSASLStack(t, devstack.SASL{Mechanism: "OAUTHBEARER", VerifyToken: func(tok string) (string, error) {
		c, err := gcp.DecodeKafkaToken(tok, time.Now())
		if err != nil {
			return "", err
		}
		if err := endpoint.check(c.AccessToken); err != nil {
			return "", err
		}
		principals.Store(c.Subject, true)
		return c.Subject, nil
	}})
	for _, viaADC := range []bool{false, true} {
		s := &config.SASL{Mechanism: "OAUTHBEARER", Provider: "google", CredentialsFile: credFile}
		saslYAML := fmt.Sprintf(`{mechanism: OAUTHBEARER, provider: google, credentials_file: %q}`, credFile)
		if viaADC {
			t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", credFile)
			s.CredentialsFile = ""
			saslYAML = `{mechanism: OAUTHBEARER, provider: google}`
		}
		conn := config.KafkaConn{Brokers: stack.Brokers, SASL: s}
		if !viaADC {
			runThroughSASL(t, stack, conn, saslYAML, 100)
		} else {
			cl := saslClient(t, conn)
			if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "in", Value: []byte(`{"id":-2}`)}).FirstErr(); err != nil {
				t.Fatalf("through Application Default Credentials: %v", err)
			}
		}
	}
	if _, ok := principals.Load(email); !ok {
		t.Fatal("the broker never saw the service account as the token's subject")
	}

	// A token whose access token Google did not issue is refused, by name.
	forged := gcp.EncodeKafkaToken("ya29.forged", email, time.Now(), time.Now().Add(time.Hour))
	stackCheck := func(tok string) error {
		c, err := gcp.DecodeKafkaToken(tok, time.Now())
		if err != nil {
			return err
		}
		return endpoint.check(c.AccessToken)
	}
	if err := stackCheck(forged); err == nil {
		t.Fatal("the check accepted an access token nobody issued")
	}
	if err := stackCheck(gcp.EncodeKafkaToken("ya29.x", email, time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour))); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("an expired token: %v", err)
	}
}
