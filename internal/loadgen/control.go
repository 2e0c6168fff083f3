package loadgen

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// RateControl changes the rate of a running load test: Set replaces the
// profile's rate (steady, bursty or schedule) with a steady total rate
// for the rest of the run. Every change is kept, for the report. Safe for
// concurrent use.
type RateControl struct {
	gen atomic.Int64 // bumped by every change, so pacers reconfigure

	mu       sync.Mutex
	rate     float64
	set      bool
	start    time.Time
	profile  Profile
	changes  []RateChange
	runStart bool
}

// RateChange is one change of the rate while a run went on.
type RateChange struct {
	Elapsed time.Duration // since the start of the run
	Rate    float64       // records/s over all connections
	By      string        // who changed it, e.g. "PUT /rate"
}

// NewRateControl returns a control for one run.
func NewRateControl() *RateControl { return &RateControl{} }

// begin is called by Produce when the run starts.
func (c *RateControl) begin(start time.Time, p Profile) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.start, c.profile, c.runStart = start, p, true
}

// Set makes the total rate records/s (> 0) from now on.
func (c *RateControl) Set(rate float64, by string) error {
	if !(rate > 0) || math.IsInf(rate, 0) {
		return fmt.Errorf("rate %v: must be a number of records per second > 0", rate)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.runStart {
		return errors.New("the run has not started")
	}
	c.rate, c.set = rate, true
	c.changes = append(c.changes, RateChange{Elapsed: time.Since(c.start), Rate: rate, By: by})
	c.gen.Add(1)
	return nil
}

// Current is the total rate now: the last one set, else the profile's;
// ok is false when it is unlimited.
func (c *RateControl) Current() (rate float64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.set {
		return c.rate, true
	}
	if !c.runStart {
		return 0, false
	}
	ph := c.profile.phaseAt(time.Since(c.start))
	return ph.rate, !ph.unlimited
}

// Changes are the changes so far, oldest first.
func (c *RateControl) Changes() []RateChange {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]RateChange(nil), c.changes...)
}

// override is the rate set, if any, and the generation of that setting.
func (c *RateControl) override() (float64, bool, int64) {
	if c == nil {
		return 0, false, 0
	}
	gen := c.gen.Load()
	if gen == 0 {
		return 0, false, 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rate, c.set, gen
}

// Handler serves GET /rate (the current total rate as {"rate": N}, null
// when unlimited) and PUT /rate with a body of a number or {"rate": N}.
func (c *RateControl) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /rate", func(w http.ResponseWriter, _ *http.Request) {
		rate, ok := c.Current()
		var v any
		if ok {
			v = rate
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"rate": v})
	})
	mux.HandleFunc("PUT /rate", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1024))
		if err != nil {
			http.Error(w, "reading the body: "+err.Error(), http.StatusBadRequest)
			return
		}
		rate, err := parseRateBody(body)
		if err == nil {
			err = c.Set(rate, "PUT /rate")
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"rate": rate})
	})
	return mux
}

func parseRateBody(body []byte) (float64, error) {
	text := strings.TrimSpace(string(body))
	if strings.HasPrefix(text, "{") {
		var v struct {
			Rate *float64 `json:"rate"`
		}
		if err := json.Unmarshal(body, &v); err != nil || v.Rate == nil {
			return 0, errors.New(`want a number or {"rate": N}`)
		}
		return *v.Rate, nil
	}
	rate, err := strconv.ParseFloat(text, 64)
	if err != nil {
		return 0, errors.New(`want a number or {"rate": N}`)
	}
	return rate, nil
}
