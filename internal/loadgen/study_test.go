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
	runs, err := ConnectionStudy(context.Background(), ProduceOptions{Brokers: stack.Brokers, Topic: "study", CreateTopic: true,
		Size: 1024, Duration: 1500 * time.Millisecond, Profile: Profile{Rate: 2000}}, []int{1, 5},
		MonitorOptions{MetricsURLs: []string{stack.MetricsURL}, Interval: 250 * time.Millisecond})
	if err != nil || len(runs) != 2 {
		t.Fatalf("%d runs, %v", len(runs), err)
	}
	one, five := runs[0], runs[1]
	for _, r := range runs {
		if r.Result.Records == 0 || r.Result.Errors != 0 || r.SteadyIngress() <= 0 {
			t.Errorf("%d connections: %d acked, %d errors, ingress %v", r.Connections, r.Result.Records, r.Result.Errors, r.SteadyIngress())
		}
	}
	t.Logf("requests/s %.0f vs %.0f, connections %.0f vs %.0f", one.SteadyRequests(), five.SteadyRequests(), one.PeakConnections(), five.PeakConnections())
	if five.SteadyRequests() < 2*one.SteadyRequests() {
		t.Errorf("5 connections: %.0f requests/s, 1: %.0f; want several times more", five.SteadyRequests(), one.SteadyRequests())
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
