package admin

import (
	"sync"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/pipeline"
	"github.com/sluice-dev/sluice/internal/transform"
	"gopkg.in/yaml.v3"
)

// Summary is one pipeline in GET /v1/pipelines.
type Summary struct {
	Name  string         `json:"name"`
	State pipeline.State `json:"state"`
	Error string         `json:"error,omitempty"`
	// Degraded: running, but retrying something (see the detail's
	// retrying list) or kept from reading (its consumers' warnings).
	Degraded         bool      `json:"degraded"`
	Since            time.Time `json:"since"`
	Consumers        int       `json:"consumers"`
	RecordsIn        int64     `json:"records_in"`
	RecordsOut       int64     `json:"records_out"`
	RecordsInPerSec  float64   `json:"records_in_per_sec"`
	RecordsOutPerSec float64   `json:"records_out_per_sec"`
	Lag              int64     `json:"lag"`
	LagSeconds       float64   `json:"lag_seconds"`
	// FreshnessSeconds is now minus the watermark (event time made
	// durable); absent until the watermark is known.
	FreshnessSeconds *float64 `json:"freshness_seconds,omitempty"`
	InFlightRecords  int64    `json:"in_flight_records"`
	DeadLettered     int64    `json:"dead_lettered"`
	Skipped          int64    `json:"skipped"`
	Filtered         int64    `json:"filtered"` // dropped by a transforms filter
	Errors           int64    `json:"errors"`
	Retries          int64    `json:"retries"`
	Batches          int64    `json:"batches"`
	CanMerge         bool     `json:"can_merge"`

	// Source is whether the source's servers answer (absent for sources
	// that cannot tell).
	Source *connector.SourceHealth `json:"source,omitempty"`
}

// Detail is GET /v1/pipelines/{name}: the engine's status plus rates,
// the source's properties, the sink's merge history (when it merges), the
// redacted configuration and the sampled history for charts.
type Detail struct {
	pipeline.Status
	RecordsInPerSec  float64 `json:"records_in_per_sec"`
	RecordsOutPerSec float64 `json:"records_out_per_sec"`
	// MaxPollRecords is what each consumer asks the source for per read.
	MaxPollRecords int `json:"max_poll_records"`
	// Properties are the source's client properties in force; absent when
	// the source has none that can be changed at run time.
	Properties      map[string]any `json:"properties,omitempty"`
	KnownProperties []string       `json:"known_properties,omitempty"`
	Merge           *MergeStatus   `json:"merge,omitempty"`
	// Config is the redacted configuration; when a token is set, only a
	// caller that sends it sees it, and ConfigHidden says why it is absent.
	Config       map[string]any `json:"config,omitempty"`
	ConfigHidden string         `json:"config_hidden,omitempty"`
	// Series is one sample per second, oldest first (omitted with
	// ?series=0).
	Series []Sample `json:"series,omitempty"`
	// Transforms names the pipeline's steps and the fields each touches
	// (transform.Describe), in order; absent without transforms. What
	// they let through is records_in less filtered (and dead-lettered).
	Transforms []string `json:"transforms,omitempty"`
	// Routes is, with several named sinks, the route list in order, with
	// the records each sink made durable.
	Routes []RouteStatus `json:"routes,omitempty"`
}

// RouteStatus is one entry of a pipeline's route list.
type RouteStatus struct {
	Sink    string `json:"sink"`
	Default bool   `json:"default,omitempty"` // the last entry, without when
	Out     int64  `json:"out"`
}

// MergeStatus is present when the sink merges a staging table.
type MergeStatus struct {
	// History is the sink's recent merges, oldest first, failed attempts
	// included.
	History []connector.MergeInfo `json:"history"`
}

// Sample is one point of a pipeline's throughput and lag history.
type Sample struct {
	Time             int64   `json:"t"` // Unix milliseconds
	RecordsInPerSec  float64 `json:"in"`
	RecordsOutPerSec float64 `json:"out"`
	Lag              int64   `json:"lag"`
	LagSeconds       float64 `json:"lag_s"`
	InFlightRecords  int64   `json:"in_flight"`
}

const historyLen = 300 // five minutes at one sample per second

// history is a ring of samples, one per Sample call.
type history struct {
	mu      sync.Mutex
	samples []Sample
	last    struct {
		at      time.Time
		in, out int64
	}
}

func (h *history) add(now time.Time, st pipeline.Status) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := Sample{Time: now.UnixMilli(), Lag: st.Lag, LagSeconds: st.LagSeconds, InFlightRecords: st.InFlightRecords}
	if !h.last.at.IsZero() {
		if d := now.Sub(h.last.at).Seconds(); d > 0 {
			s.RecordsInPerSec = float64(max(st.RecordsIn-h.last.in, 0)) / d
			s.RecordsOutPerSec = float64(max(st.RecordsOut-h.last.out, 0)) / d
		}
	}
	h.last.at, h.last.in, h.last.out = now, st.RecordsIn, st.RecordsOut
	if h.samples == nil {
		h.samples = make([]Sample, 0, historyLen)
	}
	if len(h.samples) == historyLen {
		copy(h.samples, h.samples[1:])
		h.samples = h.samples[:historyLen-1]
	}
	h.samples = append(h.samples, s)
}

// rates averages the last few samples, which smooths batchy sinks.
func (h *history) rates() (in, out float64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := min(len(h.samples)-1, 5) // the first sample has no rate
	if n <= 0 {
		return 0, 0
	}
	for _, s := range h.samples[len(h.samples)-n:] {
		in += s.RecordsInPerSec
		out += s.RecordsOutPerSec
	}
	return in / float64(n), out / float64(n)
}

func (h *history) series() []Sample {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Sample(nil), h.samples...)
}

func (e *entry) summary() Summary {
	st := e.Pipeline.Pipeline.Status()
	in, out := e.history.rates()
	_, canMerge := e.Sink.(connector.Merger)
	return Summary{
		Name: st.Name, State: st.State, Error: st.Error, Degraded: st.Degraded, Since: st.Since,
		Consumers: len(st.Consumers), RecordsIn: st.RecordsIn, RecordsOut: st.RecordsOut,
		RecordsInPerSec: in, RecordsOutPerSec: out, Lag: st.Lag, LagSeconds: st.LagSeconds, InFlightRecords: st.InFlightRecords,
		DeadLettered: st.DeadLettered, Skipped: st.Skipped, Filtered: st.Filtered, Errors: st.Errors, Retries: st.Retries,
		Batches: st.Batches, CanMerge: canMerge, FreshnessSeconds: st.FreshnessSeconds, Source: st.Source,
	}
}

func (e *entry) detail(withSeries, withConfig bool) Detail {
	p := e.Pipeline.Pipeline
	d := Detail{Status: p.Status(), MaxPollRecords: p.MaxPollRecords()}
	if withConfig {
		d.Config = e.config
	} else {
		d.ConfigHidden = "the configuration is shown only with the admin token (Authorization: Bearer <token>)"
	}
	if d.Consumers == nil {
		d.Consumers = []pipeline.ConsumerStatus{}
	}
	if d.RecentBatches == nil {
		d.RecentBatches = []pipeline.BatchInfo{}
	}
	d.RecordsInPerSec, d.RecordsOutPerSec = e.history.rates()
	if props := p.Properties(); props != nil {
		d.Properties = props
		d.KnownProperties = config.KnownConsumerProperties()
	}
	if m, ok := e.Sink.(connector.Merger); ok {
		d.Merge = &MergeStatus{History: m.Merges()}
		if d.Merge.History == nil {
			d.Merge.History = []connector.MergeInfo{}
		}
	}
	if withSeries {
		d.Series = e.history.series()
	}
	d.Transforms = transform.Describe(e.Config.Transforms)
	if len(d.Transforms) == 0 {
		d.Transforms = nil
	}
	for i, r := range e.Config.Route {
		d.Routes = append(d.Routes, RouteStatus{Sink: r.Sink, Default: i == len(e.Config.Route)-1, Out: d.RoutedOut[r.Sink]})
	}
	return d
}

// configMap renders a redacted pipeline configuration keyed as in the
// pipeline file (the YAML keys), for the API and the dashboard.
func configMap(p config.Pipeline) (map[string]any, error) {
	b, err := yaml.Marshal(config.Redact(p))
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return m, nil
}
