package bqemu

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	rpccode "google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Faults configures injected failures and quotas. The zero value injects
// nothing and sets no quota. It is set with Options.Faults, SetFaults, or
// POST /emulator/faults with the JSON form:
//
//	{"code": "RESOURCE_EXHAUSTED", "rate": 0.1, "next": 3, "terminate": false,
//	 "latency": "20ms", "max_connections": 10, "message": "..."}
type Faults struct {
	// Code is the status of a failing append. Default: RESOURCE_EXHAUSTED.
	Code codes.Code
	// Message is the status message. Default for RESOURCE_EXHAUSTED:
	// BigQuery's "Exceeds 'AppendRows throughput' quota ..." text, which is
	// the one managedwriter treats as retriable; for others a generic text.
	Message string
	// Rate is the fraction of appends (0..1) that fail at random.
	Rate float64
	// Next makes the next Next appends fail, before Rate applies.
	Next int
	// Terminate ends the whole AppendRows stream with the status (as
	// BigQuery does on a server-side disconnect) instead of answering the
	// one request with an error response.
	Terminate bool
	// Latency delays every append response. The stream keeps accepting
	// requests meanwhile, so it models a slow service, not a slow client.
	Latency time.Duration
	// MaxConnections is the quota of concurrent AppendRows streams, which
	// BigQuery calls connections. A stream opened beyond it fails with
	// RESOURCE_EXHAUSTED "Exceeds quota: concurrent connections". 0: none.
	MaxConnections int
	// CommitNext makes the next CommitNext BatchCommitWriteStreams calls
	// fail with Code (default INTERNAL, which Google's client does not
	// retry by itself, unlike UNAVAILABLE) before committing anything, as a
	// commit BigQuery could not run would.
	CommitNext int
}

type faultsJSON struct {
	Code           string  `json:"code,omitempty"`
	Message        string  `json:"message,omitempty"`
	Rate           float64 `json:"rate,omitempty"`
	Next           int     `json:"next,omitempty"`
	Terminate      bool    `json:"terminate,omitempty"`
	Latency        string  `json:"latency,omitempty"`
	MaxConnections int     `json:"max_connections,omitempty"`
	CommitNext     int     `json:"commit_next,omitempty"`
}

// MarshalJSON writes codes by their canonical names (RESOURCE_EXHAUSTED)
// and the latency as a Go duration string.
func (f Faults) MarshalJSON() ([]byte, error) {
	w := faultsJSON{Message: f.Message, Rate: f.Rate, Next: f.Next, Terminate: f.Terminate, MaxConnections: f.MaxConnections, CommitNext: f.CommitNext}
	if f.Code != codes.OK {
		w.Code = rpccode.Code(f.Code).String()
	}
	if f.Latency > 0 {
		w.Latency = f.Latency.String()
	}
	return json.Marshal(w)
}

func (f *Faults) UnmarshalJSON(b []byte) error {
	var w faultsJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*f = Faults{Message: w.Message, Rate: w.Rate, Next: w.Next, Terminate: w.Terminate, MaxConnections: w.MaxConnections, CommitNext: w.CommitNext}
	if w.Code != "" {
		c, ok := rpccode.Code_value[strings.ToUpper(w.Code)]
		if !ok {
			return fmt.Errorf("unknown status code %q", w.Code)
		}
		f.Code = codes.Code(c)
	}
	if w.Latency != "" {
		d, err := time.ParseDuration(w.Latency)
		if err != nil {
			return fmt.Errorf("parsing latency: %w", err)
		}
		f.Latency = d
	}
	return f.validate()
}

func (f Faults) validate() error {
	switch {
	case f.Rate < 0 || f.Rate > 1:
		return fmt.Errorf("rate must be within [0, 1], got %v", f.Rate)
	case f.Next < 0:
		return fmt.Errorf("next must be >= 0, got %d", f.Next)
	case f.Latency < 0:
		return fmt.Errorf("latency must be >= 0, got %v", f.Latency)
	case f.CommitNext < 0:
		return fmt.Errorf("commit_next must be >= 0, got %d", f.CommitNext)
	case f.MaxConnections < 0:
		return fmt.Errorf("max_connections must be >= 0, got %d", f.MaxConnections)
	}
	return nil
}

// faultState is the live fault configuration; Next counts down here.
type faultState struct {
	mu sync.Mutex
	f  Faults
}

func (s *faultState) set(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.f = f
}

func (s *faultState) get() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f
}

// injection is the fault decision for one append.
type injection struct {
	err       *status.Status // nil: no failure
	terminate bool
	latency   time.Duration
}

// next decides the fate of one append.
func (s *faultState) next() injection {
	s.mu.Lock()
	defer s.mu.Unlock()
	inj := injection{latency: s.f.Latency}
	fail := false
	if s.f.Next > 0 {
		s.f.Next--
		fail = true
	} else if s.f.Rate > 0 && rand.Float64() < s.f.Rate {
		fail = true
	}
	if !fail {
		return inj
	}
	code, msg := s.f.Code, s.f.Message
	if code == codes.OK {
		code = codes.ResourceExhausted
	}
	if msg == "" {
		switch code {
		case codes.ResourceExhausted:
			msg = "Exceeds 'AppendRows throughput' quota, user_id: bqemu (status: INSUFFICIENT_TOKENS), you can issue a raise quota request (injected by bqemu)"
		case codes.Unavailable:
			msg = "The service is currently unavailable. (injected by bqemu)"
		default:
			msg = "injected by bqemu"
		}
	}
	inj.err = status.New(code, msg)
	inj.terminate = s.f.Terminate
	return inj
}

func (s *faultState) maxConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f.MaxConnections
}

// nextCommit decides the fate of one BatchCommitWriteStreams call: nil,
// or the status it fails with.
func (s *faultState) nextCommit() *status.Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f.CommitNext == 0 {
		return nil
	}
	s.f.CommitNext--
	code := s.f.Code
	if code == codes.OK {
		code = codes.Internal
	}
	msg := s.f.Message
	if msg == "" {
		msg = "Internal error encountered: commit not run (injected by bqemu)"
	}
	return status.New(code, msg)
}
