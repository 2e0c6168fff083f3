package gcp

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/auth"
	"cloud.google.com/go/auth/credentials"
	"cloud.google.com/go/compute/metadata"
)

// cloudPlatformScope is the scope Google Managed Kafka's access tokens need.
const cloudPlatformScope = "https://www.googleapis.com/auth/cloud-platform"

// earlyRefresh is how long before an access token expires a new one is
// fetched, so that no SASL handshake carries a token about to expire.
const earlyRefresh = 5 * time.Minute

// KafkaTokens builds the OAUTHBEARER tokens Google Managed Service for
// Apache Kafka documents: three base64url (unpadded) parts joined by dots,
// a JWT-shaped header {"typ":"JWT","alg":"GOOG_OAUTH2_TOKEN"}, a payload
// {"exp","iat","iss":"Google","scope":"kafka","sub":<principal email>},
// and the Google OAuth 2.0 access token itself in place of a signature.
// Access tokens come from Application Default Credentials or a
// credentials file, cached and refreshed before they expire.
//
// Token is safe for concurrent use (a client authenticates each broker
// connection).
type KafkaTokens struct {
	creds *auth.Credentials
	now   func() time.Time

	mu    sync.Mutex
	email string // the principal; looked up once when the file lacks it
}

// NewKafkaTokens loads credentials: file when set (field names it in
// errors), else Application Default Credentials. No token is fetched yet.
func NewKafkaTokens(ctx context.Context, file, field string) (*KafkaTokens, error) {
	opts := &credentials.DetectOptions{Scopes: []string{cloudPlatformScope}, EarlyTokenRefresh: earlyRefresh}
	var creds *auth.Credentials
	var raw []byte
	if file != "" {
		var err error
		if raw, err = os.ReadFile(file); err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		var head struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(raw, &head); err != nil {
			return nil, fmt.Errorf("%s: %s is not a JSON credentials file: %w", field, file, err)
		}
		if creds, err = credentials.NewCredentialsFromJSON(credentials.CredType(head.Type), raw, opts); err != nil {
			return nil, fmt.Errorf("%s: loading %s: %w", field, file, err)
		}
	} else {
		var err error
		if creds, err = credentials.DetectDefault(opts); err != nil {
			return nil, fmt.Errorf("finding Application Default Credentials for Google Managed Kafka (set GOOGLE_APPLICATION_CREDENTIALS or %s): %w", field, err)
		}
		raw = creds.JSON()
	}
	t := &KafkaTokens{creds: creds, now: time.Now}
	t.email = emailFromJSON(raw)
	if t.email == "" && len(raw) == 0 && metadata.OnGCE() {
		// On Google Cloud without a file: the VM's or workload's account.
		email, err := metadata.EmailWithContext(ctx, "default")
		if err != nil {
			return nil, fmt.Errorf("reading the service account's email from the metadata server: %w", err)
		}
		t.email = email
	}
	return t, nil
}

// emailFromJSON is the principal of a service account key, or of the
// account an impersonated_service_account file impersonates.
func emailFromJSON(raw []byte) string {
	if len(raw) == 0 {
		return ""
	}
	var f struct {
		ClientEmail      string `json:"client_email"`
		ImpersonationURL string `json:"service_account_impersonation_url"`
	}
	if json.Unmarshal(raw, &f) != nil {
		return ""
	}
	if f.ClientEmail != "" {
		return f.ClientEmail
	}
	// .../projects/-/serviceAccounts/NAME@PROJECT.iam.gserviceaccount.com:generateAccessToken
	if i := strings.LastIndex(f.ImpersonationURL, "/serviceAccounts/"); i >= 0 {
		e := f.ImpersonationURL[i+len("/serviceAccounts/"):]
		e, _, _ = strings.Cut(e, ":")
		if u, err := url.PathUnescape(e); err == nil {
			return u
		}
	}
	return ""
}

// Token returns a token for one SASL OAUTHBEARER authentication and when
// it expires.
func (t *KafkaTokens) Token(ctx context.Context) (string, time.Time, error) {
	tok, err := t.creds.Token(ctx)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("getting a Google access token for Managed Kafka: %w", err)
	}
	t.mu.Lock()
	email := t.email
	t.mu.Unlock()
	if email == "" {
		// User credentials (gcloud auth application-default login): the
		// token's own account.
		if email, err = tokenEmail(ctx, tok.Value); err != nil {
			return "", time.Time{}, err
		}
		t.mu.Lock()
		t.email = email
		t.mu.Unlock()
	}
	exp := tok.Expiry
	if exp.IsZero() {
		exp = t.now().Add(time.Hour)
	}
	return EncodeKafkaToken(tok.Value, email, t.now(), exp), exp, nil
}

// EncodeKafkaToken is the token format Google Managed Kafka documents.
func EncodeKafkaToken(accessToken, email string, now, exp time.Time) string {
	b64 := base64.RawURLEncoding.EncodeToString
	header, _ := json.Marshal(map[string]string{"typ": "JWT", "alg": "GOOG_OAUTH2_TOKEN"})
	payload, _ := json.Marshal(map[string]any{"exp": exp.Unix(), "iat": now.Unix(), "iss": "Google", "scope": "kafka", "sub": email})
	return b64(header) + "." + b64(payload) + "." + b64([]byte(accessToken))
}

// KafkaTokenClaims are the parts of a Google Managed Kafka token a broker
// checks.
type KafkaTokenClaims struct {
	AccessToken string
	Subject     string
	Expiry      time.Time
}

// DecodeKafkaToken checks a token's shape as Google Managed Kafka does
// (header typ JWT and alg GOOG_OAUTH2_TOKEN, issuer Google, a subject, an
// expiry in the future at now) and returns its claims; verifying the
// access token itself is the caller's part.
func DecodeKafkaToken(token string, now time.Time) (KafkaTokenClaims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return KafkaTokenClaims{}, errors.New("the token is not three dot-separated parts")
	}
	dec := base64.RawURLEncoding.DecodeString
	var header struct{ Typ, Alg string }
	var payload struct {
		Exp   float64 `json:"exp"`
		Iss   string  `json:"iss"`
		Sub   string  `json:"sub"`
		Scope string  `json:"scope"`
	}
	h, err := dec(parts[0])
	if err != nil || json.Unmarshal(h, &header) != nil || header.Typ != "JWT" || header.Alg != "GOOG_OAUTH2_TOKEN" {
		return KafkaTokenClaims{}, errors.New(`the token's header is not {"typ":"JWT","alg":"GOOG_OAUTH2_TOKEN"}`)
	}
	p, err := dec(parts[1])
	if err != nil || json.Unmarshal(p, &payload) != nil {
		return KafkaTokenClaims{}, errors.New("the token's payload is not base64url JSON")
	}
	access, err := dec(parts[2])
	if err != nil || len(access) == 0 {
		return KafkaTokenClaims{}, errors.New("the token carries no access token")
	}
	exp := time.Unix(int64(payload.Exp), 0)
	switch {
	case payload.Iss != "Google":
		return KafkaTokenClaims{}, fmt.Errorf("the token's issuer is %q, not Google", payload.Iss)
	case payload.Sub == "":
		return KafkaTokenClaims{}, errors.New("the token names no principal (sub)")
	case !exp.After(now):
		return KafkaTokenClaims{}, fmt.Errorf("the token expired at %s", exp.UTC().Format(time.RFC3339))
	}
	return KafkaTokenClaims{AccessToken: string(access), Subject: payload.Sub, Expiry: exp}, nil
}

// tokenInfoURL answers which account an access token belongs to.
var tokenInfoURL = "https://oauth2.googleapis.com/tokeninfo"

func tokenEmail(ctx context.Context, accessToken string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenInfoURL, strings.NewReader(url.Values{"access_token": {accessToken}}.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("asking Google which account the credentials are: %w", err)
	}
	defer resp.Body.Close()
	var info struct {
		Email string `json:"email"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&info) != nil || info.Email == "" {
		return "", fmt.Errorf("asking Google which account the credentials are: status %s, no email (the credentials need the email scope, or use a service account)", resp.Status)
	}
	return info.Email, nil
}
