package registry

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// contentType is what Confluent's registry answers with, and what its
// clients ask for.
const contentType = "application/vnd.schemaregistry.v1+json"

// Confluent's error codes: the HTTP status followed by a detail digit or
// two. Clients switch on them (franz-go sr, confluent-kafka).
const (
	codeSubjectNotFound       = 40401
	codeVersionNotFound       = 40402
	codeSchemaNotFound        = 40403
	codeSubjectSoftDeleted    = 40404
	codeSubjectNotSoftDeleted = 40405
	codeVersionNotSoftDeleted = 40407
	codeSubjectCompatNotSet   = 40408
	codeIncompatibleSchema    = 409
	codeInvalidSchema         = 42201
	codeInvalidVersion        = 42202
	codeInvalidCompatibility  = 42203
	codeBadRequest            = 400
	codeStoreError            = 50001
)

// apiError is an error answered to the client in Confluent's shape.
type apiError struct {
	status int
	code   int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func errSubjectNotFound(subject string) *apiError {
	return &apiError{http.StatusNotFound, codeSubjectNotFound, fmt.Sprintf("Subject '%s' not found.", subject)}
}

func errVersionNotFound(version int) *apiError {
	return &apiError{http.StatusNotFound, codeVersionNotFound, fmt.Sprintf("Version %d not found.", version)}
}

func errSchemaIDNotFound(id int) *apiError {
	return &apiError{http.StatusNotFound, codeSchemaNotFound, fmt.Sprintf("Schema %d not found", id)}
}

func errSchemaNotFound() *apiError {
	return &apiError{http.StatusNotFound, codeSchemaNotFound, "Schema not found"}
}

func errInvalidSchema(format string, args ...any) *apiError {
	return &apiError{http.StatusUnprocessableEntity, codeInvalidSchema, "Invalid schema: " + fmt.Sprintf(format, args...)}
}

func errInvalidVersion(v string) *apiError {
	return &apiError{http.StatusUnprocessableEntity, codeInvalidVersion, fmt.Sprintf(
		"The specified version '%s' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"", v)}
}

func errInvalidCompatibility(level string) *apiError {
	return &apiError{http.StatusUnprocessableEntity, codeInvalidCompatibility, fmt.Sprintf(
		"Invalid compatibility level %q. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive", level)}
}

func errBadRequest(format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, codeBadRequest, fmt.Sprintf(format, args...)}
}

// writeJSON answers v with Confluent's content type.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error_code":50001,"message":"encoding the response"}`)
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeError answers err: an *apiError as itself, anything else as a 500.
func writeError(w http.ResponseWriter, err error) {
	ae, ok := err.(*apiError)
	if !ok {
		ae = &apiError{http.StatusInternalServerError, codeStoreError, err.Error()}
	}
	writeJSON(w, ae.status, map[string]any{"error_code": ae.code, "message": ae.msg})
}
