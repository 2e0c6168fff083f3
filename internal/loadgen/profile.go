package loadgen

import (
	"context"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Profile shapes the produce rate over time.
//
// Steady produces at Rate records per second (0: as fast as the brokers
// take them). Bursty repeats a cycle of BurstEvery: a burst of
// BurstDuration at BurstRate (0: as fast as possible), then Rate until the
// next burst (0: silent). That reproduces "quiet for hours, then 50,000
// records in two minutes" on a shorter clock, which is what an idle-merge
// trigger or a consumer autoscaler has to survive.
//
// Schedule follows Points (see ParseRateSchedule): each point's rate
// holds until the next, or with Ramp changes linearly towards it.
type Profile struct {
	Kind          string // "steady" (default), "bursty" or "schedule"
	Rate          float64
	BurstRate     float64
	BurstDuration time.Duration
	BurstEvery    time.Duration
	Points        []SchedulePoint
	Ramp          bool
}

const (
	ProfileSteady   = "steady"
	ProfileBursty   = "bursty"
	ProfileSchedule = "schedule"
)

// divided is the profile of one of n connections that together follow
// p: every rate divided by n (0 keeps its meaning, unlimited or silent).
func (p Profile) divided(n int) Profile {
	if n <= 1 {
		return p
	}
	p.Rate /= float64(n)
	p.BurstRate /= float64(n)
	points := make([]SchedulePoint, len(p.Points))
	for i, pt := range p.Points {
		points[i] = SchedulePoint{At: pt.At, Rate: pt.Rate / float64(n)}
	}
	p.Points = points
	return p
}

// phase is a stretch of time with one rate: unlimited, silent (rate 0 and
// not unlimited), or rate records per second. end is elapsed time since
// the start of the run at which the phase ends.
type phase struct {
	rate      float64
	unlimited bool
	end       time.Duration
}

func (ph phase) silent() bool { return !ph.unlimited && ph.rate <= 0 }

const forever = time.Duration(math.MaxInt64)

func (p Profile) phaseAt(elapsed time.Duration) phase {
	if p.Kind == ProfileSchedule {
		return schedulePhase(p.Points, p.Ramp, elapsed)
	}
	if p.Kind != ProfileBursty {
		return phase{rate: p.Rate, unlimited: p.Rate <= 0, end: forever}
	}
	cycleStart := elapsed - elapsed%p.BurstEvery
	if elapsed-cycleStart < p.BurstDuration {
		return phase{rate: p.BurstRate, unlimited: p.BurstRate <= 0, end: cycleStart + p.BurstDuration}
	}
	return phase{rate: p.Rate, end: cycleStart + p.BurstEvery}
}

// pacer hands out permission to produce for one connection, at its
// share of the rate (Profile.divided), so that --rate is the total over
// all of them, not per connection.
type pacer struct {
	profile Profile
	start   time.Time
	limiter *rate.Limiter
	// control, if set, may replace the profile's rate while it runs;
	// share is this pacer's part of that total rate.
	control *RateControl
	share   float64

	mu       sync.Mutex
	phaseEnd time.Duration // the phase the limiter is configured for
	gen      int64         // and the control's generation
}

func newPacer(p Profile, start time.Time) *pacer {
	return &pacer{profile: p, start: start, limiter: rate.NewLimiter(0, 1), phaseEnd: -1, share: 1}
}

// chunkFor is how many records one reservation grants at a rate: 10 ms
// worth, so a fast rate does not cost a timer per record and a slow one
// still spaces records evenly.
func chunkFor(r float64) int { return max(1, int(r/100)) }

// take blocks until up to want records may be produced and returns how
// many; it returns an error only when ctx ends. A wait never runs past the
// end of the current phase, so a slow quiet rate cannot delay a burst.
func (p *pacer) take(ctx context.Context, want int) (int, error) {
	for {
		now := time.Now()
		elapsed := now.Sub(p.start)
		ph := p.profile.phaseAt(elapsed)
		overridden, isSet, gen := p.control.override()
		if isSet {
			ph = phase{rate: overridden * p.share, end: forever}
		}
		if ph.unlimited {
			return want, ctx.Err()
		}
		phaseEndAt := p.start.Add(ph.end)
		if ph.silent() {
			if ph.end == forever {
				// Silent to the end (a schedule's last rate is 0).
				<-ctx.Done()
				return 0, ctx.Err()
			}
			if err := sleepUntil(ctx, phaseEndAt); err != nil {
				return 0, err
			}
			continue
		}
		n := min(want, chunkFor(ph.rate))
		p.mu.Lock()
		if p.phaseEnd != ph.end || p.gen != gen {
			p.phaseEnd, p.gen = ph.end, gen
			p.limiter.SetLimitAt(now, rate.Limit(ph.rate))
			p.limiter.SetBurstAt(now, chunkFor(ph.rate))
		}
		res := p.limiter.ReserveN(now, n)
		p.mu.Unlock()
		if !res.OK() {
			continue
		}
		delay := res.DelayFrom(now)
		if ph.end != forever && now.Add(delay).After(phaseEndAt) {
			res.CancelAt(now)
			if err := sleepUntil(ctx, phaseEndAt); err != nil {
				return 0, err
			}
			continue
		}
		if err := sleepUntil(ctx, now.Add(delay)); err != nil {
			res.Cancel()
			return 0, err
		}
		return n, nil
	}
}

func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
