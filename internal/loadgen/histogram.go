package loadgen

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// subBuckets is the number of linear buckets per power of two: 32 keeps
// every quantile within about 3% of the true value, in 64*32 counters.
const (
	subBucketBits = 5
	subBuckets    = 1 << subBucketBits
)

// latencyHistogram counts durations in log-linear buckets, like
// HdrHistogram at a fixed precision. Record is safe for concurrent use
// (produce callbacks of several clients run at once) and never allocates;
// quantiles read a consistent-enough view while records are still added.
type latencyHistogram struct {
	counts [64 * subBuckets]atomic.Int64
	total  atomic.Int64
	max    atomic.Int64
}

func bucketOf(ns int64) int {
	if ns < subBuckets {
		return int(max(ns, 0))
	}
	v := uint64(ns)
	exp := bits.Len64(v) - subBucketBits // >= 1
	mantissa := int(v>>(exp-1)) & (subBuckets - 1)
	return exp*subBuckets + mantissa
}

// bucketUpper is the largest value that falls in bucket i, so that a
// quantile never reads lower than the durations it summarises.
func bucketUpper(i int) int64 {
	exp, mantissa := i/subBuckets, i%subBuckets
	if exp == 0 {
		return int64(mantissa)
	}
	low := (uint64(subBuckets) | uint64(mantissa)) << (exp - 1)
	return int64(low + (uint64(1) << (exp - 1)) - 1)
}

func (h *latencyHistogram) Record(d time.Duration) {
	ns := int64(d)
	h.counts[bucketOf(ns)].Add(1)
	h.total.Add(1)
	for {
		m := h.max.Load()
		if ns <= m || h.max.CompareAndSwap(m, ns) {
			return
		}
	}
}

// Count is the number of durations recorded.
func (h *latencyHistogram) Count() int64 { return h.total.Load() }

// Max is the largest duration recorded.
func (h *latencyHistogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Quantile returns the duration below which a fraction q (0..1) of the
// recorded durations fall, rounded up to its bucket; 0 when empty.
func (h *latencyHistogram) Quantile(q float64) time.Duration {
	total := h.total.Load()
	if total == 0 {
		return 0
	}
	rank := int64(q*float64(total) + 0.5)
	rank = min(max(rank, 1), total)
	var seen int64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return min(time.Duration(bucketUpper(i)), h.Max())
		}
	}
	return h.Max()
}
