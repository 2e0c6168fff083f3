package loadgen

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// PUT /rate changes the rate of a running load: the seconds after the
// change follow the new rate within 10%, and the report lists the change
// and draws the asked rate.
func TestPutRateChangesTheRateWhileItRuns(t *testing.T) {
	control := NewRateControl()
	srv := httptest.NewServer(control.Handler())
	t.Cleanup(srv.Close)
	put := func(body string) (int, string) {
		req, err := http.NewRequest(http.MethodPut, srv.URL+"/rate", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := put("1000"); code != http.StatusBadRequest {
		t.Errorf("PUT /rate before the run: HTTP %d, want 400", code)
	}
	changed := false
	res, records := produceAndRead(t, ProduceOptions{
		Brokers: startBroker(t, kfake.SeedTopics(3, "ctl")), Topic: "ctl", Connections: 2,
		Duration: 3 * time.Second, Profile: Profile{Rate: 1000}, Control: control,
		OnSample: func(s ProduceSample) {
			if !changed && s.Elapsed >= 900*time.Millisecond {
				changed = true
				if code, body := put(`{"rate": 3000}`); code != http.StatusOK {
					t.Errorf("PUT /rate: HTTP %d %s", code, body)
				}
			}
		},
	})
	counts := perBucket(res, records, time.Second)
	if len(counts) < 3 || !within(counts[0], 1000) || !within(counts[2], 3000) {
		t.Errorf("per-second counts %v, want about 1000 then 3000 after the change at ~1 s", counts)
	}
	if len(res.RateChanges) != 1 || res.RateChanges[0].Rate != 3000 || res.RateChanges[0].By != "PUT /rate" {
		t.Errorf("changes %+v", res.RateChanges)
	}
	rep := ProduceReport(res)
	if !strings.Contains(strings.Join(factValues(rep, "rate changed"), ";"), "to 3000 records/s (PUT /rate)") {
		t.Errorf("report facts %v lack the change", rep.Facts)
	}
	if s := rep.Charts[0].Series; len(s) != 2 || s[1].Points[len(s[1].Points)-1] != 3000 {
		t.Errorf("rate chart %+v, want the asked rate ending at 3000", s)
	}
	for _, bad := range []string{"0", "-5", "fast", `{"rate": "x"}`} {
		if code, _ := put(bad); code != http.StatusBadRequest {
			t.Errorf("PUT /rate %q: HTTP %d, want 400", bad, code)
		}
	}
	if rate, ok := control.Current(); !ok || rate != 3000 {
		t.Errorf("current rate %v %v, want 3000", rate, ok)
	}
}

func factValues(r Report, label string) []string {
	var out []string
	for _, f := range r.Facts {
		if f[0] == label {
			out = append(out, f[1])
		}
	}
	return out
}
