package loadgen

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistogramQuantilesWithinThreePercent(t *testing.T) {
	var h latencyHistogram
	r := rand.New(rand.NewPCG(1, 2))
	var all []time.Duration
	for range 100000 {
		// Log-uniform from 10 µs to 10 s, like produce latencies under load.
		d := time.Duration(float64(10*time.Microsecond) * math.Pow(10, r.Float64()*6))
		all = append(all, d)
		h.Record(d)
	}
	slices.Sort(all)
	for _, q := range []float64{0.5, 0.95, 0.99, 0.999} {
		want := all[int(q*float64(len(all)))-1]
		got := h.Quantile(q)
		if got < want || float64(got) > float64(want)*1.035 {
			t.Errorf("p%v = %v, exact %v", q*100, got, want)
		}
	}
	if h.Count() != int64(len(all)) || h.Max() != all[len(all)-1] {
		t.Errorf("count %d max %v, want %d %v", h.Count(), h.Max(), len(all), all[len(all)-1])
	}
	var empty latencyHistogram
	if empty.Quantile(0.99) != 0 {
		t.Error("an empty histogram has a p99")
	}
}

func TestHistogramBucketsCoverEveryValue(t *testing.T) {
	for _, ns := range []int64{0, 1, 31, 32, 33, 63, 64, 1000, 1 << 40, 1<<62 + 12345} {
		i := bucketOf(ns)
		if up := bucketUpper(i); up < ns || (i > 0 && bucketUpper(i-1) >= ns) {
			t.Errorf("%d in bucket %d with upper %d (previous %d)", ns, i, up, bucketUpper(i-1))
		}
	}
}
