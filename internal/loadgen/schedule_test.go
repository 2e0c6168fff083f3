package loadgen

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// within says got is within 10% of want.
// within: a count per second that follows the asked rate. The producer
// never runs ahead of the rate (10% for bucket edges), but a starved CI
// machine can leave it behind, so the lower bound is half: still far from
// the neighbouring steps the tests ask for (x3, x5, /10).
func within(got int, want float64) bool {
	return float64(got) >= want*0.5 && float64(got) <= want*1.1
}

// The records produced in each second follow the schedule, in steps or
// on a ramp (never above it, at least half of it on a starved machine):
// counted from the records' timestamps, read back.
func TestRateScheduleIsFollowedSecondBySecond(t *testing.T) {
	for _, tc := range []struct {
		name     string
		schedule string
		ramp     bool
		want     []float64 // records in each second
	}{
		{"steps", "0s:2000,1s:500,2s:3000", false, []float64{2000, 500, 3000}},
		// 0 -> 2000/s over 2 s: 500 in the first second, 1500 in the
		// second; then it holds 2000.
		{"ramp", "0s:0,2s:2000", true, []float64{500, 1500, 2000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			points, err := ParseRateSchedule(tc.schedule)
			if err != nil {
				t.Fatal(err)
			}
			res, records := produceAndRead(t, ProduceOptions{
				Brokers: startBroker(t, kfake.SeedTopics(3, "sched")), Topic: "sched", Connections: 2,
				Duration: 3 * time.Second, Profile: Profile{Kind: ProfileSchedule, Points: points, Ramp: tc.ramp},
			})
			counts := perBucket(res, records, time.Second)
			if len(counts) < 3 {
				t.Fatalf("per-second counts %v, want 3 seconds", counts)
			}
			for i, want := range tc.want {
				if !within(counts[i], want) {
					t.Errorf("second %d: %d records, want %.0f (half to 110%%; all: %v)", i, counts[i], want, counts)
				}
			}
			// The report draws the schedule beside what was achieved.
			charts := ProduceReport(res).Charts
			if len(charts[0].Series) != 2 || charts[0].Series[1].Name != "scheduled" {
				t.Errorf("rate chart %+v, want the scheduled rate beside the achieved one", charts[0].Series)
			}
		})
	}
}

func TestParseRateScheduleNamesWhatIsWrong(t *testing.T) {
	for in, want := range map[string]string{
		"0s:1000,30s:5000,60s:200": "",
		"5s:1000":                  "first point must be at 0s",
		"0s:1000,10s:5,5s:7":       "times must increase",
		"0s:fast":                  "rate must be a number",
		"0s:-1":                    "rate must be a number",
		"0s":                       "want TIME:RATE",
		"0x:10":                    "unknown unit",
	} {
		_, err := ParseRateSchedule(in)
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
}
