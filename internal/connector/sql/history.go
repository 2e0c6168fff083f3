package sql

import (
	"sync"

	"github.com/sluice-dev/sluice/internal/connector"
)

// mergeHistory keeps the last merges (and failed attempts) in memory for
// the admin API.
type mergeHistory struct {
	mu   sync.Mutex
	max  int
	ring []connector.MergeInfo // oldest first
}

func newMergeHistory(max int) *mergeHistory {
	if max <= 0 {
		max = 100
	}
	return &mergeHistory{max: max}
}

func (h *mergeHistory) add(m connector.MergeInfo) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.ring) == h.max {
		copy(h.ring, h.ring[1:])
		h.ring = h.ring[:h.max-1]
	}
	h.ring = append(h.ring, m)
}

func (h *mergeHistory) list() []connector.MergeInfo {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]connector.MergeInfo(nil), h.ring...)
}
