package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/hamba/avro/v2"
)

// stateFile is the file, inside the server's directory, that holds every
// subject and schema.
const stateFile = "schema-registry.json"

// Schema types the registry accepts. AVRO schemas are parsed and checked for
// compatibility; JSON schemas are stored and served as they are.
const (
	typeAvro = "AVRO"
	typeJSON = "JSON"
)

// reference is a Confluent schema reference: a named type that this schema
// uses, defined by another subject's version.
type reference struct {
	Name    string `json:"name"`
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

// storedSchema is one schema known by its global id. Schemas are never
// removed, even when every subject version using them is deleted, so that
// records written with them stay decodable.
type storedSchema struct {
	ID         int         `json:"id"`
	Type       string      `json:"schemaType"`
	Schema     string      `json:"schema"`
	References []reference `json:"references,omitempty"`
	// key identifies equal schemas (same type, same normalised text, same
	// references): registering an equal schema reuses the id.
	key string
}

// version is one version of a subject.
type version struct {
	Version int  `json:"version"`
	ID      int  `json:"id"`
	Deleted bool `json:"deleted,omitempty"`
}

// subject is a named sequence of schema versions.
type subject struct {
	Versions      []version `json:"versions"`
	Compatibility string    `json:"compatibility,omitempty"` // "" = global level
}

// state is everything the registry knows; it is what is persisted.
type state struct {
	NextID        int                 `json:"next_id"`
	Compatibility string              `json:"compatibility"`
	Schemas       []*storedSchema     `json:"schemas"`
	Subjects      map[string]*subject `json:"subjects"`

	byID  map[int]*storedSchema
	byKey map[string]*storedSchema
}

func newState() *state {
	return &state{
		NextID:        1,
		Compatibility: compatBackward,
		Subjects:      map[string]*subject{},
		byID:          map[int]*storedSchema{},
		byKey:         map[string]*storedSchema{},
	}
}

// index rebuilds the lookup maps after loading.
func (st *state) index() error {
	st.byID = make(map[int]*storedSchema, len(st.Schemas))
	st.byKey = make(map[string]*storedSchema, len(st.Schemas))
	for _, s := range st.Schemas {
		key, err := schemaKey(s.Type, s.Schema, s.References)
		if err != nil {
			return fmt.Errorf("schema %d: %w", s.ID, err)
		}
		s.key = key
		st.byID[s.ID] = s
		st.byKey[key] = s
		if s.ID >= st.NextID {
			st.NextID = s.ID + 1
		}
	}
	if st.Subjects == nil {
		st.Subjects = map[string]*subject{}
	}
	if st.Compatibility == "" {
		st.Compatibility = compatBackward
	}
	return nil
}

// liveVersions returns the versions of s not soft-deleted, oldest first.
func (s *subject) liveVersions() []version {
	var out []version
	for _, v := range s.Versions {
		if !v.Deleted {
			out = append(out, v)
		}
	}
	return out
}

// find returns the version numbered n, including deleted ones when asked.
func (s *subject) find(n int, includeDeleted bool) (version, bool) {
	for _, v := range s.Versions {
		if v.Version == n && (includeDeleted || !v.Deleted) {
			return v, true
		}
	}
	return version{}, false
}

// subjectNames lists subjects with at least one live version (or any version
// when includeDeleted), sorted.
func (st *state) subjectNames(includeDeleted bool) []string {
	names := []string{}
	for name, s := range st.Subjects {
		if includeDeleted && len(s.Versions) > 0 || len(s.liveVersions()) > 0 {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// schemaKey normalises a schema so that equal schemas written differently
// (whitespace, key order, "string" versus {"type":"string"}) get one id.
// For Avro it is hamba's full JSON form, which keeps docs, defaults and
// properties: schemas that differ only in a default are different schemas.
func schemaKey(typ, text string, refs []reference) (string, error) {
	var norm string
	switch typ {
	case typeAvro:
		// Key only on the text itself; references resolve named types, and
		// are part of the key below.
		var buf bytes.Buffer
		if err := json.Compact(&buf, []byte(text)); err != nil {
			return "", fmt.Errorf("schema is not JSON: %w", err)
		}
		norm = buf.String()
		if s, err := avro.ParseWithCache(text, "", &avro.SchemaCache{}); err == nil {
			if b, err := json.Marshal(s); err == nil {
				norm = string(b)
			}
		}
	case typeJSON:
		var buf bytes.Buffer
		if err := json.Compact(&buf, []byte(text)); err != nil {
			return "", fmt.Errorf("schema is not JSON: %w", err)
		}
		norm = buf.String()
	default:
		return "", fmt.Errorf("unsupported schema type %q", typ)
	}
	var b strings.Builder
	b.WriteString(typ)
	b.WriteByte(0)
	b.WriteString(norm)
	for _, r := range refs {
		fmt.Fprintf(&b, "\x00%s\x00%s\x00%d", r.Name, r.Subject, r.Version)
	}
	return b.String(), nil
}

// load reads the state file in dir; a missing file is an empty registry.
func load(dir string) (*state, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if os.IsNotExist(err) {
		return newState(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading schema registry state: %w", err)
	}
	st := newState()
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("parsing schema registry state %s: %w", filepath.Join(dir, stateFile), err)
	}
	if err := st.index(); err != nil {
		return nil, fmt.Errorf("indexing schema registry state: %w", err)
	}
	return st, nil
}

// save writes the state to dir atomically: a temporary file, synced, then
// renamed over the old one, so a crash leaves either the old or the new
// state, never a torn file.
func save(dir string, st *state) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding schema registry state: %w", err)
	}
	tmp, err := os.CreateTemp(dir, stateFile+".tmp-*")
	if err != nil {
		return fmt.Errorf("saving schema registry state: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("saving schema registry state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("syncing schema registry state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("saving schema registry state: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, stateFile)); err != nil {
		return fmt.Errorf("replacing schema registry state: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // best effort: makes the rename durable on Linux
		d.Close()
	}
	return nil
}

// clone deep-copies the persisted part of the state, so a failed save can
// be rolled back.
func (st *state) clone() *state {
	c := &state{
		NextID:        st.NextID,
		Compatibility: st.Compatibility,
		Schemas:       slices.Clone(st.Schemas),
		Subjects:      make(map[string]*subject, len(st.Subjects)),
		byID:          make(map[int]*storedSchema, len(st.byID)),
		byKey:         make(map[string]*storedSchema, len(st.byKey)),
	}
	for k, v := range st.Subjects {
		c.Subjects[k] = &subject{Versions: slices.Clone(v.Versions), Compatibility: v.Compatibility}
	}
	for k, v := range st.byID {
		c.byID[k] = v
	}
	for k, v := range st.byKey {
		c.byKey[k] = v
	}
	return c
}
