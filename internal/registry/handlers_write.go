package registry

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/hamba/avro/v2"
)

// register implements POST /subjects/{subject}/versions: an equal schema
// already live under the subject returns its id (idempotent); otherwise the
// schema must be compatible with the subject's versions under its
// compatibility level, and gets the id of an equal schema registered
// elsewhere, or a new one.
func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("subject")
	req, err := readSchemaRequest(r)
	if err != nil {
		writeError(w, err)
		return
	}
	var id int
	err = s.update(func(st *state) (bool, error) {
		key, parsed, err := st.validate(req)
		if err != nil {
			return false, err
		}
		sub := st.Subjects[name]
		if sub == nil {
			sub = &subject{}
			st.Subjects[name] = sub
		}
		if existing := st.byKey[key]; existing != nil {
			for _, v := range sub.liveVersions() {
				if v.ID == existing.ID {
					id = existing.ID
					return false, nil
				}
			}
		}
		if parsed != nil {
			if problems := st.compatibilityProblems(sub, st.levelOf(sub), parsed, nil); len(problems) > 0 {
				return false, &apiError{http.StatusConflict, codeIncompatibleSchema, "Schema being registered is incompatible with an earlier schema for subject \"" +
					name + "\", details: [" + strings.Join(problems, "; ") + "]"}
			}
		}
		sc := st.byKey[key]
		if sc == nil {
			sc = &storedSchema{ID: st.NextID, Type: req.SchemaType, Schema: req.Schema, References: req.References, key: key}
			st.NextID++
			st.Schemas = append(st.Schemas, sc)
			st.byID[sc.ID] = sc
			st.byKey[key] = sc
		}
		next := 1
		if n := len(sub.Versions); n > 0 {
			next = sub.Versions[n-1].Version + 1
		}
		sub.Versions = append(sub.Versions, version{Version: next, ID: sc.ID})
		id = sc.ID
		return true, nil
	})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"id": id})
}

func (st *state) levelOf(sub *subject) string {
	if sub != nil && sub.Compatibility != "" {
		return sub.Compatibility
	}
	return st.Compatibility
}

// compatibilityProblems checks candidate against the subject's live Avro
// versions (only against those in only, when given).
func (st *state) compatibilityProblems(sub *subject, level string, candidate avro.Schema, only *version) []string {
	var (
		previous []avro.Schema
		numbers  []int
	)
	for _, v := range sub.liveVersions() {
		if only != nil && v.Version != only.Version {
			continue
		}
		sc := st.byID[v.ID]
		if sc.Type != typeAvro {
			continue
		}
		parsed, err := st.parseAvro(sc.Schema, sc.References)
		if err != nil {
			return []string{"version " + strconv.Itoa(v.Version) + " no longer parses: " + err.Error()}
		}
		previous = append(previous, parsed)
		numbers = append(numbers, v.Version)
	}
	return checkCompatibility(level, candidate, previous, numbers)
}

// lookupSchema implements POST /subjects/{subject}: which live version of
// the subject holds this schema.
func (s *Server) lookupSchema(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("subject")
	req, err := readSchemaRequest(r)
	if err != nil {
		writeError(w, err)
		return
	}
	var resp schemaResponse
	err = s.read(func(st *state) error {
		sub, err := st.liveSubject(name, showDeleted(r))
		if err != nil {
			return err
		}
		key, _, err := st.validate(req)
		if err != nil {
			return err
		}
		sc := st.byKey[key]
		if sc == nil {
			return errSchemaNotFound()
		}
		for i := len(sub.Versions) - 1; i >= 0; i-- {
			v := sub.Versions[i]
			if v.ID == sc.ID && (showDeleted(r) || !v.Deleted) {
				resp = respond(sc, name, v.Version)
				return nil
			}
		}
		return errSchemaNotFound()
	})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// deleteSubject soft-deletes every version of a subject, or with
// ?permanent=true removes a subject that was soft-deleted first. Schemas
// stay readable by id either way.
func (s *Server) deleteSubject(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("subject")
	permanent := r.URL.Query().Get("permanent") == "true"
	deleted := []int{}
	err := s.update(func(st *state) (bool, error) {
		sub, ok := st.Subjects[name]
		if !ok || len(sub.Versions) == 0 {
			return false, errSubjectNotFound(name)
		}
		live := sub.liveVersions()
		if permanent {
			if len(live) > 0 {
				return false, &apiError{http.StatusNotFound, codeSubjectNotSoftDeleted,
					"Subject '" + name + "' was not deleted first before being permanently deleted"}
			}
			for _, v := range sub.Versions {
				deleted = append(deleted, v.Version)
			}
			delete(st.Subjects, name)
			return true, nil
		}
		if len(live) == 0 {
			return false, &apiError{http.StatusNotFound, codeSubjectSoftDeleted, "Subject '" + name + "' was soft deleted.Set permanent=true to delete permanently"}
		}
		for i := range sub.Versions {
			if !sub.Versions[i].Deleted {
				sub.Versions[i].Deleted = true
				deleted = append(deleted, sub.Versions[i].Version)
			}
		}
		return true, nil
	})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, deleted)
}

// deleteVersion soft-deletes one version, or with ?permanent=true removes a
// version that was soft-deleted first.
func (s *Server) deleteVersion(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("subject")
	permanent := r.URL.Query().Get("permanent") == "true"
	n, err := parseVersion(r.PathValue("version"))
	if err != nil {
		writeError(w, err)
		return
	}
	var deleted int
	err = s.update(func(st *state) (bool, error) {
		v, err := st.resolveVersion(name, n, permanent)
		if err != nil {
			return false, err
		}
		sub := st.Subjects[name]
		i := slices.IndexFunc(sub.Versions, func(x version) bool { return x.Version == v.Version })
		deleted = v.Version
		if permanent {
			if !v.Deleted {
				return false, &apiError{http.StatusNotFound, codeVersionNotSoftDeleted, "Subject '" + name + "' Version " +
					strconv.Itoa(v.Version) + " was not deleted first before being permanently deleted"}
			}
			sub.Versions = slices.Delete(sub.Versions, i, i+1)
			if len(sub.Versions) == 0 && sub.Compatibility == "" {
				delete(st.Subjects, name)
			}
			return true, nil
		}
		sub.Versions[i].Deleted = true
		return true, nil
	})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, deleted)
}
