package kafka

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/gcp"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
)

// tokenSource gives a token for one OAUTHBEARER authentication.
type tokenSource interface {
	Token(ctx context.Context) (token string, expiry time.Time, err error)
}

// oauthMechanism is SASL OAUTHBEARER with tokens from s's provider. The
// provider is set up on the first authentication, which has a context,
// so building client options connects to nothing. Brokers that limit a
// session's lifetime (connections.max.reauth.ms) make the client
// authenticate again, with a token fetched afresh when the last one is
// close to expiry.
func oauthMechanism(s *config.SASL) sasl.Mechanism {
	var (
		mu  sync.Mutex
		src tokenSource
	)
	return oauth.Oauth(func(ctx context.Context) (oauth.Auth, error) {
		mu.Lock()
		if src == nil {
			var err error
			if src, err = newTokenSource(ctx, s); err != nil {
				mu.Unlock()
				return oauth.Auth{}, err
			}
		}
		mu.Unlock()
		tok, _, err := src.Token(ctx)
		if err != nil {
			return oauth.Auth{}, err
		}
		return oauth.Auth{Token: tok}, nil
	})
}

func newTokenSource(ctx context.Context, s *config.SASL) (tokenSource, error) {
	switch s.Provider {
	case "google":
		return gcp.NewKafkaTokens(ctx, s.CredentialsFile, "sasl.credentials_file")
	case "oidc":
		return &clientCredentials{tokenURL: s.TokenURL, clientID: s.ClientID, secret: s.ClientSecret, scopes: s.Scopes, now: time.Now}, nil
	default:
		return nil, fmt.Errorf("sasl.provider %q is not supported (google, oidc)", s.Provider)
	}
}

// oidcEarlyRefresh: a cached token is replaced when it has less than this
// left, or less than a tenth of its lifetime.
const oidcEarlyRefresh = time.Minute

// clientCredentials is an OAuth 2.0 client-credentials grant (RFC 6749
// 4.4), the token cached until shortly before it expires.
type clientCredentials struct {
	tokenURL, clientID, secret string
	scopes                     []string
	now                        func() time.Time

	mu      sync.Mutex
	token   string
	refresh time.Time // fetch a new token from then on
	expiry  time.Time
}

func (c *clientCredentials) Token(ctx context.Context) (string, time.Time, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && c.now().Before(c.refresh) {
		return c.token, c.expiry, nil
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	if len(c.scopes) > 0 {
		form.Set("scope", strings.Join(c.scopes, " "))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sasl.token_url: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// client_secret_basic, the method every server must support (RFC 6749 2.3.1).
	req.SetBasicAuth(url.QueryEscape(c.clientID), url.QueryEscape(c.secret))
	issued := c.now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("getting an OAUTHBEARER token from %s: %w", c.tokenURL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var out struct {
		AccessToken string          `json:"access_token"`
		ExpiresIn   json.Number     `json:"expires_in"`
		Error       string          `json:"error"`
		Description string          `json:"error_description"`
		TokenType   json.RawMessage `json:"token_type"`
	}
	_ = json.Unmarshal(body, &out)
	if resp.StatusCode != http.StatusOK || out.AccessToken == "" {
		why := out.Error
		if out.Description != "" {
			why += ": " + out.Description
		}
		if why == "" {
			why = "no access_token in the answer"
		}
		// The secret is never part of the message.
		return "", time.Time{}, fmt.Errorf("getting an OAUTHBEARER token from %s for client %s: %s (%s)", c.tokenURL, c.clientID, resp.Status, why)
	}
	lifetime := time.Hour
	if n, err := out.ExpiresIn.Int64(); err == nil && n > 0 {
		lifetime = time.Duration(n) * time.Second
	}
	early := min(oidcEarlyRefresh, lifetime/10)
	c.token, c.expiry, c.refresh = out.AccessToken, issued.Add(lifetime), issued.Add(lifetime-early)
	return c.token, c.expiry, nil
}
