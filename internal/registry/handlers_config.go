package registry

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

// getConfig answers GET /config (the global level) and /config/{subject}
// (the subject's own level; 40408 when it has none, unless
// ?defaultToGlobal=true).
func (s *Server) getConfig(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("subject")
	var level string
	err := s.read(func(st *state) error {
		if name == "" {
			level = st.Compatibility
			return nil
		}
		if sub := st.Subjects[name]; sub != nil && sub.Compatibility != "" {
			level = sub.Compatibility
			return nil
		}
		if r.URL.Query().Get("defaultToGlobal") == "true" {
			level = st.Compatibility
			return nil
		}
		return &apiError{http.StatusNotFound, codeSubjectCompatNotSet,
			"Subject '" + name + "' does not have subject-level compatibility configured"}
	})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"compatibilityLevel": level})
}

// putConfig sets the global or a subject's compatibility level.
func (s *Server) putConfig(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("subject")
	var body struct {
		Compatibility string `json:"compatibility"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, maxRequestBody)).Decode(&body); err != nil {
		writeError(w, errBadRequest("parsing the request body: %v", err))
		return
	}
	level := strings.ToUpper(body.Compatibility)
	if !validCompatibility(level) {
		writeError(w, errInvalidCompatibility(body.Compatibility))
		return
	}
	err := s.update(func(st *state) (bool, error) {
		if name == "" {
			st.Compatibility = level
			return true, nil
		}
		sub := st.Subjects[name]
		if sub == nil {
			sub = &subject{}
			st.Subjects[name] = sub
		}
		sub.Compatibility = level
		return true, nil
	})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"compatibility": level})
}

// deleteConfig reverts a subject to the global compatibility level and
// answers the level it had.
func (s *Server) deleteConfig(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("subject")
	var old string
	err := s.update(func(st *state) (bool, error) {
		sub := st.Subjects[name]
		if sub == nil {
			return false, errSubjectNotFound(name)
		}
		old = st.levelOf(sub)
		sub.Compatibility = ""
		if len(sub.Versions) == 0 {
			delete(st.Subjects, name)
		}
		return true, nil
	})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"compatibility": old})
}

// checkCompatibility implements POST /compatibility/subjects/{s}/versions/{v}
// (against one version, in the direction the subject's level says) and
// /versions (against every version the level covers).
func (s *Server) checkCompatibility(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("subject")
	versionText := r.PathValue("version")
	req, err := readSchemaRequest(r)
	if err != nil {
		writeError(w, err)
		return
	}
	var problems []string
	err = s.read(func(st *state) error {
		_, parsed, err := st.validate(req)
		if err != nil {
			return err
		}
		sub, err := st.liveSubject(name, false)
		if err != nil {
			return err
		}
		level := st.levelOf(sub)
		if parsed == nil {
			return nil // JSON schemas are not checked
		}
		if versionText == "" {
			problems = st.compatibilityProblems(sub, level, parsed, nil)
			return nil
		}
		n, err := parseVersion(versionText)
		if err != nil {
			return err
		}
		v, err := st.resolveVersion(name, n, false)
		if err != nil {
			return err
		}
		// Against one version, the transitive levels mean their base one.
		problems = st.compatibilityProblems(sub, strings.TrimSuffix(level, "_TRANSITIVE"), parsed, &v)
		return nil
	})
	if err != nil {
		writeError(w, err)
		return
	}
	resp := map[string]any{"is_compatible": len(problems) == 0}
	if len(problems) > 0 {
		resp["messages"] = problems
	}
	writeJSON(w, http.StatusOK, resp)
}
