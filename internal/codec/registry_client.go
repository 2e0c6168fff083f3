package codec

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/sluice-dev/sluice/internal/connector"
)

// unknownSchemaTTL is how long a "schema id not found" answer is
// remembered: records carrying an unknown id cost one registry call per
// TTL, not one each, yet an id registered late is found eventually.
const unknownSchemaTTL = 30 * time.Second

// maxReferenceDepth bounds nested schema references.
const maxReferenceDepth = 32

// Registry is a Confluent Schema Registry client (franz-go's sr) with a
// cache of schemas by id and of ids by subject. One Registry may be shared
// by every decoder and encoder of a process; it is safe for concurrent
// use, and a schema id is fetched once however many goroutines need it at
// the same time.
type Registry struct {
	client  *sr.Client
	lookups atomic.Int64

	byID sync.Map // int -> *schemaEntry, complete entries only

	mu       sync.Mutex
	inflight map[int]*schemaEntry
	ids      map[string]int // subject + "\x00" + schema text -> id
}

// schemaEntry is the outcome of fetching one schema id.
type schemaEntry struct {
	ready   chan struct{} // closed when the fields below are set
	schema  avro.Schema
	err     error     // a *badInput (unknown or unparsable), or transient
	expires time.Time // for an unknown id: when to ask again
}

// badInput is a decode failure caused by the record's bytes (or the schema
// they name); Decode turns it into a *connector.RecordError.
type badInput struct {
	reason string
	err    error
}

func (b *badInput) Error() string { return b.reason + ": " + b.err.Error() }
func (b *badInput) Unwrap() error { return b.err }

// NewRegistry returns a registry client for o.
func NewRegistry(o RegistryOptions) (*Registry, error) {
	if err := o.validate("schema_registry"); err != nil {
		return nil, err
	}
	httpClient, err := o.httpClient()
	if err != nil {
		return nil, err
	}
	opts := []sr.ClientOpt{sr.URLs(o.urls()...), sr.HTTPClient(httpClient), sr.UserAgent("sluice")}
	if o.Username != "" {
		opts = append(opts, sr.BasicAuth(o.Username, o.Password))
	}
	if o.BearerToken != "" {
		opts = append(opts, sr.BearerToken(o.BearerToken))
	}
	cl, err := sr.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("creating schema registry client: %w", err)
	}
	return &Registry{client: cl, inflight: map[int]*schemaEntry{}, ids: map[string]int{}}, nil
}

// Lookups is how many HTTP calls the registry has been sent: one per new
// schema id (plus one per schema reference), one per subject an encoder
// registers or looks up.
func (r *Registry) Lookups() int64 { return r.lookups.Load() }

func (o RegistryOptions) urls() []string {
	var out []string
	for _, u := range strings.Split(o.URL, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

func (o RegistryOptions) httpClient() (*http.Client, error) {
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = defaultRegistryTimeout
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t := o.TLS
	if t.CAFile != "" || t.CertFile != "" || t.InsecureSkipVerify {
		cfg := &tls.Config{InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // the user asked for it
		if t.CAFile != "" {
			pem, err := os.ReadFile(t.CAFile)
			if err != nil {
				return nil, &FieldError{Field: "schema_registry.tls.ca_file", Problem: err.Error()}
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, &FieldError{Field: "schema_registry.tls.ca_file", Problem: "no PEM certificate in " + t.CAFile}
			}
			cfg.RootCAs = pool
		}
		if t.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
			if err != nil {
				return nil, &FieldError{Field: "schema_registry.tls.cert_file", Problem: "loading the client certificate: " + err.Error()}
			}
			cfg.Certificates = []tls.Certificate{cert}
		}
		tr.TLSClientConfig = cfg
	}
	return &http.Client{Timeout: timeout, Transport: tr}, nil
}

// schemaByID returns the writer schema registered under id. A *badInput
// error (unknown id, unparsable or non-Avro schema) is remembered; any
// other error is transient and the next call asks the registry again.
func (r *Registry) schemaByID(ctx context.Context, id int) (avro.Schema, error) {
	if v, ok := r.byID.Load(id); ok {
		e := v.(*schemaEntry)
		if e.expires.IsZero() || time.Now().Before(e.expires) {
			return e.schema, e.err
		}
	}
	r.mu.Lock()
	e, waiting := r.inflight[id]
	if !waiting {
		e = &schemaEntry{ready: make(chan struct{})}
		r.inflight[id] = e
	}
	r.mu.Unlock()
	if waiting {
		select {
		case <-e.ready:
			return e.schema, e.err
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for schema %d from the registry: %w", id, ctx.Err())
		}
	}

	e.schema, e.err = r.fetch(ctx, id)
	var bad *badInput
	switch {
	case e.err == nil:
		r.byID.Store(id, e)
	case errors.As(e.err, &bad):
		if bad.reason == ReasonUnknownSchema {
			e.expires = time.Now().Add(unknownSchemaTTL)
		}
		r.byID.Store(id, e)
	}
	r.mu.Lock()
	delete(r.inflight, id)
	r.mu.Unlock()
	close(e.ready)
	return e.schema, e.err
}

func (r *Registry) fetch(ctx context.Context, id int) (avro.Schema, error) {
	r.lookups.Add(1)
	s, err := r.client.SchemaByID(ctx, id)
	if err != nil {
		if registryNotFound(err) {
			return nil, &badInput{ReasonUnknownSchema, fmt.Errorf("schema id %d is not in the registry", id)}
		}
		return nil, registryError(fmt.Sprintf("fetching schema %d", id), err)
	}
	if s.Type != sr.TypeAvro {
		return nil, &badInput{ReasonSchemaParse, fmt.Errorf("schema %d is %s, not Avro", id, s.Type)}
	}
	cache := &avro.SchemaCache{}
	if err := r.loadReferences(ctx, cache, s.References, 0); err != nil {
		return nil, err
	}
	parsed, err := parseSchema(s.Schema, cache)
	if err != nil {
		return nil, &badInput{ReasonSchemaParse, fmt.Errorf("schema %d: %w", id, err)}
	}
	return parsed, nil
}

// loadReferences parses the schemas that refs name into cache, so the
// schema using them can refer to their named types.
func (r *Registry) loadReferences(ctx context.Context, cache *avro.SchemaCache, refs []sr.SchemaReference, depth int) error {
	if depth > maxReferenceDepth {
		return &badInput{ReasonSchemaParse, fmt.Errorf("schema references nest deeper than %d", maxReferenceDepth)}
	}
	for _, ref := range refs {
		r.lookups.Add(1)
		s, err := r.client.SchemaByVersion(ctx, ref.Subject, ref.Version)
		if err != nil {
			if registryNotFound(err) {
				return &badInput{ReasonSchemaParse, fmt.Errorf("schema reference %q (subject %s version %d) is not in the registry", ref.Name, ref.Subject, ref.Version)}
			}
			return registryError(fmt.Sprintf("fetching schema reference %s version %d", ref.Subject, ref.Version), err)
		}
		if err := r.loadReferences(ctx, cache, s.References, depth+1); err != nil {
			return err
		}
		if _, err := parseSchema(s.Schema.Schema, cache); err != nil {
			return &badInput{ReasonSchemaParse, fmt.Errorf("schema reference %q: %w", ref.Name, err)}
		}
	}
	return nil
}

// parseSchema parses Avro schema text into its own cache (hamba's default
// cache is global: two versions of one record name would collide) and
// turns a parser panic on hostile text into an error.
func parseSchema(text string, cache *avro.SchemaCache) (s avro.Schema, err error) {
	defer func() {
		if p := recover(); p != nil {
			s, err = nil, fmt.Errorf("parsing Avro schema: %v", p)
		}
	}()
	if cache == nil {
		cache = &avro.SchemaCache{}
	}
	return avro.ParseWithCache(text, "", cache)
}

// subjectID returns the id of schema under subject: registered (which is
// idempotent) when register is set, else looked up. Ids are cached per
// subject and schema.
func (r *Registry) subjectID(ctx context.Context, subject, schema string, register bool) (int, error) {
	key := subject + "\x00" + schema
	r.mu.Lock()
	id, ok := r.ids[key]
	r.mu.Unlock()
	if ok {
		return id, nil
	}
	r.lookups.Add(1)
	s := sr.Schema{Schema: schema, Type: sr.TypeAvro}
	if register {
		id, err := r.client.RegisterSchema(ctx, subject, s, -1, -1)
		if err != nil {
			return 0, registryError("registering the schema under subject "+subject, err)
		}
		r.remember(key, id)
		return id, nil
	}
	ss, err := r.client.LookupSchema(ctx, subject, s)
	if err != nil {
		if registryNotFound(err) {
			return 0, connector.Permanent(fmt.Errorf("the schema is not registered under subject %s (auto_register is false): %w", subject, err))
		}
		return 0, registryError("looking up the schema under subject "+subject, err)
	}
	r.remember(key, ss.ID)
	return ss.ID, nil
}

func (r *Registry) remember(key string, id int) {
	r.mu.Lock()
	r.ids[key] = id
	r.mu.Unlock()
}

// registryNotFound reports a registry's own "not found" answer (a 404
// carrying a Confluent 404xx error code).
func registryNotFound(err error) bool {
	var re *sr.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusNotFound && re.ErrorCode/100 == 404
}

// registryError wraps a registry failure. Answers that retrying cannot
// change (bad credentials, a rejected or incompatible schema, a URL that is
// not a registry) are marked connector.Permanent; the rest (connection
// refused, timeouts, 5xx) are transient.
func registryError(doing string, err error) error {
	err = fmt.Errorf("%s: %w", doing, err)
	var re *sr.ResponseError
	if !errors.As(err, &re) {
		return err
	}
	switch {
	case re.StatusCode == http.StatusUnauthorized || re.StatusCode == http.StatusForbidden:
		return connector.Permanent(fmt.Errorf("%w (check schema_registry credentials)", err))
	case re.StatusCode == http.StatusConflict || re.StatusCode == http.StatusUnprocessableEntity:
		return connector.Permanent(err)
	case re.StatusCode == http.StatusNotFound:
		return connector.Permanent(fmt.Errorf("%w (is schema_registry.url a schema registry?)", err))
	}
	return err
}
