package connector

import (
	"context"
	"time"
)

// Merger is implemented by sinks that land records in a staging area and
// periodically merge it into its final place (the SQL sinks with a merge
// procedure). The admin API shows Merges and offers MergeNow.
type Merger interface {
	// Merges returns the most recent merges, oldest first, including
	// attempts that failed (Error set).
	Merges() []MergeInfo
	// MergeNow runs a merge at once, whatever the triggers say, and returns
	// when it is done (or failed, or ctx ended).
	MergeNow(ctx context.Context) error
}

// MergeTrigger says why a merge ran.
type MergeTrigger string

const (
	TriggerRecords     MergeTrigger = "records"      // every_records reached
	TriggerIdle        MergeTrigger = "idle"         // no new record for the idle period
	TriggerMaxInterval MergeTrigger = "max_interval" // the oldest unmerged record got too old
	TriggerManual      MergeTrigger = "manual"       // MergeNow (admin API)
	TriggerRecovery    MergeTrigger = "recovery"     // a batch left unmerged by an earlier run
)

// MergeInfo describes one merge (or one failed attempt at it).
type MergeInfo struct {
	// Batch is the high-water mark handed to the merge: every staging row
	// with a batch id at or below it was merged.
	Batch   int64        `json:"batch"`
	Records int64        `json:"records"` // staging rows merged
	Trigger MergeTrigger `json:"trigger"`
	// FirstArrival is when the oldest merged row was written to staging.
	FirstArrival time.Time `json:"first_arrival"`
	Started      time.Time `json:"started"` // the merge itself, after any pause and drain
	Ended        time.Time `json:"ended"`
	// EndToEnd is FirstArrival -> Ended; Took is Started -> Ended.
	EndToEnd time.Duration `json:"end_to_end_ns"`
	Took     time.Duration `json:"took_ns"`
	// Paused is how long consumers were paused (pause mode), including
	// the drain.
	Paused  time.Duration `json:"paused_ns"`
	Attempt int           `json:"attempt"`
	Error   string        `json:"error,omitempty"`
}
