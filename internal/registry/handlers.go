package registry

import (
	"encoding/json"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/hamba/avro/v2"
)

// maxRequestBody bounds a request body; schemas are small.
const maxRequestBody = 8 << 20

func (s *Server) routes() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, struct{}{}) })
	m.HandleFunc("GET /schemas/types", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, []string{typeJSON, typeAvro})
	})
	m.HandleFunc("GET /schemas/ids/{id}", s.getSchemaByID)
	m.HandleFunc("GET /schemas/ids/{id}/schema", s.getRawSchemaByID)
	m.HandleFunc("GET /schemas/ids/{id}/versions", s.getVersionsByID)
	m.HandleFunc("GET /schemas/ids/{id}/subjects", s.getSubjectsByID)
	m.HandleFunc("GET /subjects", s.getSubjects)
	m.HandleFunc("POST /subjects/{subject}", s.lookupSchema)
	m.HandleFunc("POST /subjects/{subject}/{$}", s.lookupSchema)
	m.HandleFunc("DELETE /subjects/{subject}", s.deleteSubject)
	m.HandleFunc("GET /subjects/{subject}/versions", s.getVersions)
	m.HandleFunc("POST /subjects/{subject}/versions", s.register)
	m.HandleFunc("GET /subjects/{subject}/versions/{version}", s.getVersion)
	m.HandleFunc("GET /subjects/{subject}/versions/{version}/schema", s.getRawVersion)
	m.HandleFunc("DELETE /subjects/{subject}/versions/{version}", s.deleteVersion)
	m.HandleFunc("GET /config", s.getConfig)
	m.HandleFunc("PUT /config", s.putConfig)
	m.HandleFunc("GET /config/{subject}", s.getConfig)
	m.HandleFunc("PUT /config/{subject}", s.putConfig)
	m.HandleFunc("DELETE /config/{subject}", s.deleteConfig)
	m.HandleFunc("GET /mode", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"mode": "READWRITE"})
	})
	m.HandleFunc("POST /compatibility/subjects/{subject}/versions/{version}", s.checkCompatibility)
	m.HandleFunc("POST /compatibility/subjects/{subject}/versions", s.checkCompatibility)
	return m
}

// schemaRequest is the body of register, lookup and compatibility calls.
// Other fields Confluent clients may send (metadata, ruleSet, id, version)
// are ignored.
type schemaRequest struct {
	Schema     string      `json:"schema"`
	SchemaType string      `json:"schemaType"`
	References []reference `json:"references"`
}

// schemaResponse is a schema as GET /schemas/ids/{id} returns it; the
// subject fields are set for subject versions. schemaType is omitted for
// AVRO, as Confluent does.
type schemaResponse struct {
	Subject    string      `json:"subject,omitempty"`
	Version    int         `json:"version,omitempty"`
	ID         int         `json:"id,omitempty"`
	SchemaType string      `json:"schemaType,omitempty"`
	References []reference `json:"references,omitempty"`
	Schema     string      `json:"schema"`
}

func respond(s *storedSchema, subject string, version int) schemaResponse {
	r := schemaResponse{Subject: subject, Version: version, Schema: s.Schema, References: s.References}
	if subject != "" {
		r.ID = s.ID
	}
	if s.Type != typeAvro {
		r.SchemaType = s.Type
	}
	return r
}

func readSchemaRequest(r *http.Request) (schemaRequest, error) {
	var req schemaRequest
	b, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	if err != nil {
		return req, errBadRequest("reading the request body: %v", err)
	}
	if len(b) > maxRequestBody {
		return req, &apiError{http.StatusRequestEntityTooLarge, 413, "request body too large"}
	}
	if err := json.Unmarshal(b, &req); err != nil {
		return req, errBadRequest("parsing the request body: %v", err)
	}
	req.SchemaType = strings.ToUpper(req.SchemaType)
	if req.SchemaType == "" {
		req.SchemaType = typeAvro
	}
	if req.SchemaType != typeAvro && req.SchemaType != typeJSON {
		return req, errInvalidSchema("schema type %s is not supported (AVRO, JSON)", req.SchemaType)
	}
	if strings.TrimSpace(req.Schema) == "" {
		return req, errInvalidSchema("empty schema")
	}
	return req, nil
}

// validate checks the schema in req and returns its key and, for Avro,
// the parsed schema.
func (st *state) validate(req schemaRequest) (string, avro.Schema, error) {
	key, err := schemaKey(req.SchemaType, req.Schema, req.References)
	if err != nil {
		return "", nil, errInvalidSchema("%v", err)
	}
	if req.SchemaType != typeAvro {
		return key, nil, nil
	}
	parsed, err := st.parseAvro(req.Schema, req.References)
	if err != nil {
		return "", nil, errInvalidSchema("%v", err)
	}
	return key, parsed, nil
}

func pathID(r *http.Request) (int, error) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil || id < 0 {
		return 0, errBadRequest("schema id %q is not a number", r.PathValue("id"))
	}
	return id, nil
}

// latest is the version number meaning "the latest live version".
const latest = -1

func parseVersion(v string) (int, error) {
	if v == "latest" || v == "-1" {
		return latest, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > math.MaxInt32 {
		return 0, errInvalidVersion(v)
	}
	return n, nil
}

func showDeleted(r *http.Request) bool {
	d := r.URL.Query().Get("deleted")
	return d == "true"
}

func (s *Server) getSchemaByID(w http.ResponseWriter, r *http.Request) {
	s.withSchema(w, r, func(sc *storedSchema) { writeJSON(w, http.StatusOK, respond(sc, "", 0)) })
}

func (s *Server) getRawSchemaByID(w http.ResponseWriter, r *http.Request) {
	s.withSchema(w, r, func(sc *storedSchema) {
		w.Header().Set("Content-Type", contentType)
		_, _ = io.WriteString(w, sc.Schema)
	})
}

func (s *Server) withSchema(w http.ResponseWriter, r *http.Request, fn func(*storedSchema)) {
	id, err := pathID(r)
	if err != nil {
		writeError(w, err)
		return
	}
	var sc *storedSchema
	_ = s.read(func(st *state) error { sc = st.byID[id]; return nil })
	if sc == nil {
		writeError(w, errSchemaIDNotFound(id))
		return
	}
	fn(sc)
}

type subjectVersion struct {
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

// usages lists the subject versions using schema id, sorted.
func (st *state) usages(id int, includeDeleted bool) []subjectVersion {
	out := []subjectVersion{}
	for name, sub := range st.Subjects {
		for _, v := range sub.Versions {
			if v.ID == id && (includeDeleted || !v.Deleted) {
				out = append(out, subjectVersion{name, v.Version})
			}
		}
	}
	slices.SortFunc(out, func(a, b subjectVersion) int {
		if c := strings.Compare(a.Subject, b.Subject); c != 0 {
			return c
		}
		return a.Version - b.Version
	})
	return out
}

func (s *Server) getVersionsByID(w http.ResponseWriter, r *http.Request) {
	s.withUsages(w, r, func(u []subjectVersion) { writeJSON(w, http.StatusOK, u) })
}

func (s *Server) getSubjectsByID(w http.ResponseWriter, r *http.Request) {
	s.withUsages(w, r, func(u []subjectVersion) {
		names := []string{}
		for _, sv := range u {
			if len(names) == 0 || names[len(names)-1] != sv.Subject {
				names = append(names, sv.Subject)
			}
		}
		writeJSON(w, http.StatusOK, names)
	})
}

func (s *Server) withUsages(w http.ResponseWriter, r *http.Request, fn func([]subjectVersion)) {
	id, err := pathID(r)
	if err != nil {
		writeError(w, err)
		return
	}
	var u []subjectVersion
	err = s.read(func(st *state) error {
		if st.byID[id] == nil {
			return errSchemaIDNotFound(id)
		}
		u = st.usages(id, showDeleted(r))
		return nil
	})
	if err != nil {
		writeError(w, err)
		return
	}
	fn(u)
}

func (s *Server) getSubjects(w http.ResponseWriter, r *http.Request) {
	var names []string
	_ = s.read(func(st *state) error { names = st.subjectNames(showDeleted(r)); return nil })
	writeJSON(w, http.StatusOK, names)
}

// liveSubject returns the subject when it has a version visible under
// includeDeleted, else a 40401.
func (st *state) liveSubject(name string, includeDeleted bool) (*subject, error) {
	sub, ok := st.Subjects[name]
	if !ok || len(sub.Versions) == 0 || !includeDeleted && len(sub.liveVersions()) == 0 {
		return nil, errSubjectNotFound(name)
	}
	return sub, nil
}

func (s *Server) getVersions(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("subject")
	var out []int
	err := s.read(func(st *state) error {
		sub, err := st.liveSubject(name, showDeleted(r))
		if err != nil {
			return err
		}
		out = []int{}
		for _, v := range sub.Versions {
			if showDeleted(r) || !v.Deleted {
				out = append(out, v.Version)
			}
		}
		return nil
	})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// resolveVersion finds version n (or the latest live one) of a subject.
func (st *state) resolveVersion(name string, n int, includeDeleted bool) (version, error) {
	sub, err := st.liveSubject(name, includeDeleted)
	if err != nil {
		return version{}, err
	}
	if n == latest {
		live := sub.liveVersions()
		if len(live) == 0 {
			return version{}, errSubjectNotFound(name)
		}
		return live[len(live)-1], nil
	}
	v, ok := sub.find(n, includeDeleted)
	if !ok {
		return version{}, errVersionNotFound(n)
	}
	return v, nil
}

func (s *Server) subjectVersion(w http.ResponseWriter, r *http.Request, fn func(*storedSchema, version)) {
	name := r.PathValue("subject")
	n, err := parseVersion(r.PathValue("version"))
	if err != nil {
		writeError(w, err)
		return
	}
	var (
		v  version
		sc *storedSchema
	)
	err = s.read(func(st *state) error {
		var err error
		v, err = st.resolveVersion(name, n, showDeleted(r))
		sc = st.byID[v.ID]
		return err
	})
	if err != nil {
		writeError(w, err)
		return
	}
	fn(sc, v)
}

func (s *Server) getVersion(w http.ResponseWriter, r *http.Request) {
	s.subjectVersion(w, r, func(sc *storedSchema, v version) {
		writeJSON(w, http.StatusOK, respond(sc, r.PathValue("subject"), v.Version))
	})
}

func (s *Server) getRawVersion(w http.ResponseWriter, r *http.Request) {
	s.subjectVersion(w, r, func(sc *storedSchema, _ version) {
		w.Header().Set("Content-Type", contentType)
		_, _ = io.WriteString(w, sc.Schema)
	})
}
