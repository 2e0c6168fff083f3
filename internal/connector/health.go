package connector

import "time"

// Source health states, worst last.
const (
	SourceHealthy     = "healthy"
	SourceDegraded    = "degraded"    // some of the source's servers fail, others answer
	SourceUnreachable = "unreachable" // every server the source needs fails
)

// SourceHealth is what a source's client knows of its servers: a source
// whose brokers are down does not move, and without this it looks like
// an idle topic.
type SourceHealth struct {
	State string `json:"state"` // healthy, degraded or unreachable
	// Since is when the source left healthy for its current state; zero
	// while healthy.
	Since time.Time `json:"since,omitzero"`
	// LastError is the latest failure to connect or to get an answer,
	// with no secret in it; Errors counts failures since the source was
	// last healthy.
	LastError string `json:"last_error,omitempty"`
	Errors    int64  `json:"errors"`
}

// HealthReporter is implemented by sources that can tell whether their
// servers answer, from what their client saw (connections and requests),
// not from how long nothing was read.
type HealthReporter interface {
	SourceHealth() SourceHealth
}
