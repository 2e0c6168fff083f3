package bqemu

import (
	"errors"
	"fmt"
	"net/http"

	"google.golang.org/grpc/codes"
)

// Sentinels for callers of the Go API. Errors returned by the emulator match
// them with errors.Is.
var (
	ErrNotFound      = errors.New("not found")
	ErrAlreadyExists = errors.New("already exists")
	ErrInvalid       = errors.New("invalid")
)

// apiError is an error that knows how BigQuery reports it on both of its
// surfaces: the REST JSON error shape (HTTP code and reason) and gRPC.
type apiError struct {
	httpCode int
	reason   string // BigQuery's errors[].reason: notFound, duplicate, invalid, ...
	code     codes.Code
	msg      string
}

func (e *apiError) Error() string { return e.msg }

func (e *apiError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.code == codes.NotFound
	case ErrAlreadyExists:
		return e.code == codes.AlreadyExists
	case ErrInvalid:
		return e.code == codes.InvalidArgument
	}
	return false
}

func notFoundf(format string, args ...any) error {
	return &apiError{http.StatusNotFound, "notFound", codes.NotFound, "Not found: " + fmt.Sprintf(format, args...)}
}

func duplicatef(format string, args ...any) error {
	return &apiError{http.StatusConflict, "duplicate", codes.AlreadyExists, "Already Exists: " + fmt.Sprintf(format, args...)}
}

func invalidf(format string, args ...any) error {
	return &apiError{http.StatusBadRequest, "invalid", codes.InvalidArgument, fmt.Sprintf(format, args...)}
}

func preconditionf(format string, args ...any) error {
	return &apiError{http.StatusPreconditionFailed, "conditionNotMet", codes.FailedPrecondition, fmt.Sprintf(format, args...)}
}

// asAPIError classifies any error; unknown errors are internal errors.
func asAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	return &apiError{http.StatusInternalServerError, "internalError", codes.Internal, err.Error()}
}

// httpStatusName is the "status" string of BigQuery's JSON error body.
func httpStatusName(c codes.Code) string {
	switch c {
	case codes.NotFound:
		return "NOT_FOUND"
	case codes.AlreadyExists:
		return "ALREADY_EXISTS"
	case codes.InvalidArgument:
		return "INVALID_ARGUMENT"
	case codes.FailedPrecondition:
		return "FAILED_PRECONDITION"
	default:
		return "INTERNAL"
	}
}
