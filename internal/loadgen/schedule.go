package loadgen

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SchedulePoint is a rate from a time since the start of the run.
type SchedulePoint struct {
	At   time.Duration
	Rate float64 // records/s; 0 is silent
}

// ParseRateSchedule reads "0s:1000,30s:5000,60s:200": at 0 s 1,000
// records/s, from 30 s 5,000, from 60 s 200. The first point must be at
// 0s and the times must increase.
func ParseRateSchedule(s string) ([]SchedulePoint, error) {
	var points []SchedulePoint
	for i, part := range strings.Split(s, ",") {
		at, rate, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok {
			return nil, fmt.Errorf("%q: want TIME:RATE, such as 30s:5000", part)
		}
		d, err := time.ParseDuration(strings.TrimSpace(at))
		if err != nil {
			return nil, fmt.Errorf("%q: %w", part, err)
		}
		r, err := strconv.ParseFloat(strings.TrimSpace(rate), 64)
		if err != nil || r < 0 {
			return nil, fmt.Errorf("%q: the rate must be a number >= 0", part)
		}
		switch {
		case i == 0 && d != 0:
			return nil, fmt.Errorf("%q: the first point must be at 0s", part)
		case i > 0 && d <= points[i-1].At:
			return nil, fmt.Errorf("%q: times must increase", part)
		}
		points = append(points, SchedulePoint{At: d, Rate: r})
	}
	if len(points) == 0 {
		return nil, errors.New("empty schedule")
	}
	return points, nil
}

// rampSlice is how often a ramp's rate is recomputed.
const rampSlice = 100 * time.Millisecond

// schedulePhase is the phase of a schedule at elapsed: a step holds a
// point's rate until the next point; a ramp goes linearly from one
// point's rate to the next, in slices of rampSlice; after the last point
// its rate holds.
func schedulePhase(points []SchedulePoint, ramp bool, elapsed time.Duration) phase {
	i := len(points) - 1
	for i > 0 && points[i].At > elapsed {
		i--
	}
	p := points[i]
	if i == len(points)-1 {
		return phase{rate: p.Rate, end: forever}
	}
	next := points[i+1]
	if !ramp {
		return phase{rate: p.Rate, end: next.At}
	}
	sliceStart := p.At + (elapsed-p.At)/rampSlice*rampSlice
	end := min(sliceStart+rampSlice, next.At)
	mid := float64(sliceStart+end) / 2
	frac := (mid - float64(p.At)) / float64(next.At-p.At)
	return phase{rate: p.Rate + frac*(next.Rate-p.Rate), end: end}
}
