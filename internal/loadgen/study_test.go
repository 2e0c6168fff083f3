package loadgen

import (
	"context"
	"strings"
	"testing"
	"time"
)

// The study the benchmark repeats, in small: the same rate over 1 and 5
// producer connections; the run over 5 shows the broker more requests
// and more connections for the same records, and the report draws one
// line per run.
func TestConnectionStudyComparesRunsOnTheBrokersFigures(t *testing.T) {
	stack := startDevStack(t)
	const records, size = 2000, 1024
	runs, err := ConnectionStudy(context.Background(), ProduceOptions{Brokers: stack.Brokers, Topic: "study", CreateTopic: true,
		Size: size, Records: records, Profile: Profile{Rate: 2000}}, []int{1, 5},
		MonitorOptions{MetricsURLs: []string{stack.MetricsURL}, Interval: 250 * time.Millisecond})
	if err != nil || len(runs) != 2 {
		t.Fatalf("%d runs, %v", len(runs), err)
	}
	// What the broker counted over each run, from the monitor's rates
	// (counts, not timings: a starved machine changes the rates, not
	// what was sent).
	produceRequests := map[int]float64{}
	for _, r := range runs {
		in := counted(r.Samples, func(b BrokerSample) float64 { return b.IngressBytes })
		produceRequests[r.Connections] = counted(r.Samples, func(b BrokerSample) float64 { return b.Requests["Produce"] })
		if r.Result.Records != records || r.Result.Errors != 0 || in < records*size {
			t.Errorf("%d connections: %d acked, %d errors, %.0f bytes in", r.Connections, r.Result.Records, r.Result.Errors, in)
		}
	}
	one, five := runs[0], runs[1]
	t.Logf("produce requests %v by connections; connections %.0f vs %.0f", produceRequests, one.PeakConnections(), five.PeakConnections())
	if produceRequests[5] < 2*produceRequests[1] {
		t.Errorf("5 connections sent %.0f produce requests, 1 sent %.0f; want several times more", produceRequests[5], produceRequests[1])
	}
	if five.PeakConnections() < one.PeakConnections()+4 {
		t.Errorf("5 connections opened %.0f at most, 1 opened %.0f", five.PeakConnections(), one.PeakConnections())
	}
	r := StudyReport(runs)
	if len(r.Charts) != 3 || len(r.Charts[0].Series) != 2 || r.Charts[0].Series[1].Name != "5 connection(s)" {
		t.Errorf("report charts %+v", r.Charts)
	}
	var page strings.Builder
	if err := WriteReport(&page, r); err != nil || !strings.Contains(page.String(), "broker requests/s") {
		t.Errorf("report: %v", err)
	}
	if _, err := ConnectionStudy(context.Background(), ProduceOptions{Brokers: stack.Brokers, Topic: "study"}, []int{1}, MonitorOptions{}); err == nil || !strings.Contains(err.Error(), "--metrics-url") {
		t.Errorf("a study without broker metrics: %v", err)
	}
}
