package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/pipeline"
)

const maxBody = 1 << 20

func (s *Server) listPipelines(w http.ResponseWriter, _ *http.Request) {
	out := make([]Summary, 0, len(s.order))
	for _, e := range s.order {
		out = append(out, e.summary())
	}
	// token_required tells the dashboard whether to offer its token
	// control; reads stay open either way.
	writeJSON(w, http.StatusOK, map[string]any{"pipelines": out, "token_required": s.opts.Token != ""})
}

func (s *Server) getPipeline(w http.ResponseWriter, r *http.Request) {
	e := s.lookup(w, r)
	if e == nil {
		return
	}
	series := r.URL.Query().Get("series")
	writeJSON(w, http.StatusOK, e.detail(series != "0" && series != "false", s.authorized(r)))
}

var consumerName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

// addConsumer: POST /v1/pipelines/{name}/consumers, body optional
// {"name": "..."}.
func (s *Server) addConsumer(w http.ResponseWriter, r *http.Request) {
	e := s.lookup(w, r)
	if e == nil {
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	name, err := parseAddConsumer(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !s.controllable(w, e) {
		return
	}
	e.adding.Lock()
	defer e.adding.Unlock()
	st := e.Pipeline.Pipeline.Status()
	for _, c := range st.Consumers {
		if c.ID == name {
			writeError(w, http.StatusConflict, fmt.Sprintf("pipeline %s already has a consumer %q", st.Name, name))
			return
		}
	}
	// Each consumer holds connections and buffers: a cap keeps a script
	// (or a page that got through) from exhausting the process.
	if limit := s.maxConsumers(e); len(st.Consumers) >= limit {
		writeError(w, http.StatusConflict, fmt.Sprintf("pipeline %s already has %d consumers, the most allowed (admin.max_consumers: %d); remove one first or raise the limit", st.Name, len(st.Consumers), limit))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.ControlTimeout)
	defer cancel()
	id, err := e.Pipeline.Pipeline.AddConsumer(ctx, name)
	if err != nil {
		writeError(w, statusFor(err), "adding a consumer to "+st.Name+": "+err.Error())
		return
	}
	s.log.Info("consumer added", "pipeline", st.Name, "consumer", id, "remote", r.RemoteAddr)
	w.Header().Set("Location", "/v1/pipelines/"+st.Name+"/consumers/"+id)
	writeJSON(w, http.StatusCreated, map[string]any{"id": id})
}

// maxConsumers is the cap for e: Options.MaxConsumers, or the configured
// consumer count when that is larger.
func (s *Server) maxConsumers(e *entry) int {
	return max(s.opts.MaxConsumers, e.Config.Source.Consumers())
}

// parseAddConsumer decodes the optional body of POST .../consumers: empty,
// or {"name": "..."} with a valid consumer name.
func parseAddConsumer(body []byte) (string, error) {
	var req struct {
		Name string `json:"name"`
	}
	if err := decodeJSON(body, &req, true); err != nil {
		return "", err
	}
	if req.Name != "" && !consumerName.MatchString(req.Name) {
		return "", errors.New("name: must be 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	return req.Name, nil
}

// removeConsumer: DELETE /v1/pipelines/{name}/consumers/{id}.
func (s *Server) removeConsumer(w http.ResponseWriter, r *http.Request) {
	e := s.lookup(w, r)
	if e == nil {
		return
	}
	id := r.PathValue("id")
	p := e.Pipeline.Pipeline
	st := p.Status()
	found := false
	for _, c := range st.Consumers {
		found = found || c.ID == id
	}
	switch {
	case !found:
		writeError(w, http.StatusNotFound, fmt.Sprintf("pipeline %s has no consumer %q", st.Name, id))
		return
	case len(st.Consumers) == 1:
		writeError(w, http.StatusConflict, fmt.Sprintf("%q is the last consumer of %s; pause the pipeline instead", id, st.Name))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.ControlTimeout)
	defer cancel()
	if err := p.RemoveConsumer(ctx, id); err != nil {
		writeError(w, statusFor(err), "removing consumer "+id+": "+err.Error())
		return
	}
	s.log.Info("consumer removed", "pipeline", st.Name, "consumer", id, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]any{"removed": id})
}

// setProperties: PATCH /v1/pipelines/{name}/properties with a JSON object
// of consumer properties; null removes one (back to its default).
func (s *Server) setProperties(w http.ResponseWriter, r *http.Request) {
	e := s.lookup(w, r)
	if e == nil {
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	changes, err := parsePropertyChanges(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	p := e.Pipeline.Pipeline
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.ControlTimeout)
	defer cancel()
	start := time.Now()
	if err := p.Reconfigure(ctx, changes); err != nil {
		writeError(w, statusFor(err), "changing the properties of "+p.Name()+": "+err.Error())
		return
	}
	names := make([]string, 0, len(changes))
	for k := range changes {
		names = append(names, k)
	}
	sort.Strings(names)
	s.log.Info("consumer properties changed", "pipeline", p.Name(), "properties", strings.Join(names, ","), "took", time.Since(start).Round(time.Millisecond), "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]any{"properties": p.Properties(), "max_poll_records": p.MaxPollRecords()})
}

// parsePropertyChanges decodes the body of PATCH .../properties: a JSON
// object of property -> whole number, string, boolean or null (back to the
// default). Numbers that are not whole stay strings, for the source to say
// why they are wrong.
func parsePropertyChanges(body []byte) (map[string]any, error) {
	var raw map[string]any
	if err := decodeJSON(body, &raw, false); err != nil {
		return nil, err
	}
	if len(raw) == 0 {
		return nil, errors.New(`no properties given; send a JSON object such as {"max.poll.records": 1000}`)
	}
	changes := make(map[string]any, len(raw))
	for k, v := range raw {
		switch v := v.(type) {
		case json.Number:
			if n, err := v.Int64(); err == nil {
				changes[k] = n
			} else {
				changes[k] = v.String()
			}
		case map[string]any, []any:
			return nil, fmt.Errorf("%s: must be a number or a string", k)
		default:
			changes[k] = v
		}
	}
	return changes, nil
}

func (s *Server) pause(w http.ResponseWriter, r *http.Request) {
	e := s.lookup(w, r)
	if e == nil {
		return
	}
	e.Pipeline.Pipeline.PauseOperator()
	s.log.Info("pipeline paused by operator", "pipeline", e.Pipeline.Pipeline.Name(), "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]any{"state": e.Pipeline.Pipeline.Status().State})
}

func (s *Server) resume(w http.ResponseWriter, r *http.Request) {
	e := s.lookup(w, r)
	if e == nil {
		return
	}
	e.Pipeline.Pipeline.ResumeOperator()
	s.log.Info("pipeline resumed by operator", "pipeline", e.Pipeline.Pipeline.Name(), "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]any{"state": e.Pipeline.Pipeline.Status().State})
}

func (s *Server) merge(w http.ResponseWriter, r *http.Request) {
	e := s.lookup(w, r)
	if e == nil {
		return
	}
	name := e.Pipeline.Pipeline.Name()
	m, ok := e.Sink.(connector.Merger)
	if !ok {
		writeError(w, http.StatusConflict, fmt.Sprintf("pipeline %s: its sink has no merge (only SQL sinks with a merge: section have one)", name))
		return
	}
	if !s.controllable(w, e) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.ControlTimeout)
	defer cancel()
	start := time.Now()
	if err := m.MergeNow(ctx); err != nil {
		writeError(w, statusFor(err), "merging "+name+": "+err.Error())
		return
	}
	took := time.Since(start)
	s.log.Info("merge run by operator", "pipeline", name, "took", took.Round(time.Millisecond), "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]any{"merged": true, "took_ns": took})
}

// controllable answers 409 unless the pipeline is running or paused:
// before Run starts consumers or after it stopped, nobody serves control
// requests.
func (s *Server) controllable(w http.ResponseWriter, e *entry) bool {
	st := e.Pipeline.Pipeline.Status()
	if st.State == pipeline.StateRunning || st.State == pipeline.StatePaused {
		return true
	}
	writeError(w, http.StatusConflict, fmt.Sprintf("pipeline %s is %s", st.Name, st.State))
	return false
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
}

// readyz: ready when every pipeline is running or paused and can move
// records: nothing is retried (a write, a decode, a dead-letter send, a
// read) and its source is not unreachable. A pipeline degraded only by a
// partial outage its client routes around (one broker of three down) or
// by a warning (a topic missing) moves records: it is shown degraded,
// and ready.
func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	states := map[string]pipeline.State{}
	ready := true
	for _, e := range s.order {
		status := e.Pipeline.Pipeline.Status()
		st := status.State
		if status.Degraded && st == pipeline.StateRunning {
			st = "degraded"
		}
		states[e.Pipeline.Pipeline.Name()] = st
		ready = ready && movesRecords(status)
	}
	code := http.StatusOK
	if !ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, map[string]any{"ready": ready, "pipelines": states})
}

// movesRecords: running or paused, nothing retried, the source reachable.
func movesRecords(st pipeline.Status) bool {
	if st.State != pipeline.StateRunning && st.State != pipeline.StatePaused {
		return false
	}
	return len(st.Retrying) == 0 && (st.Source == nil || st.Source.State != connector.SourceUnreachable)
}

// statusFor maps an engine error to an HTTP status.
func statusFor(err error) int {
	switch {
	case errors.Is(err, pipeline.ErrInvalidProperties):
		return http.StatusBadRequest
	case errors.Is(err, pipeline.ErrNotReconfigurable):
		return http.StatusConflict
	case errors.Is(err, pipeline.ErrRolledBack):
		return http.StatusUnprocessableEntity
	case errors.Is(err, pipeline.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	default:
		return http.StatusInternalServerError
	}
}

// readBody reads a request body of at most maxBody bytes, answering 400
// when it cannot.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, "reading the request body: "+err.Error())
		return nil, false
	}
	return body, true
}

// decodeJSON decodes body into v, refusing bad JSON, unknown fields and
// trailing data. An empty body is accepted when optional.
func decodeJSON(body []byte, v any, optional bool) error {
	if len(bytes.TrimSpace(body)) == 0 {
		if optional {
			return nil
		}
		return errors.New("the request body is empty; a JSON object is needed")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("the request body is not the JSON object expected: %w", err)
	}
	if len(bytes.TrimSpace(body[dec.InputOffset():])) > 0 {
		return errors.New("the request body has data after the JSON object")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		b, _ = json.Marshal(map[string]string{"error": "encoding the response: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
