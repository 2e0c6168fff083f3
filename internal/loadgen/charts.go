package loadgen

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// ProduceReport draws a load run: achieved rate and produce latency over
// time.
func ProduceReport(res ProduceResult) Report {
	o := res.Options
	rate := Series{Name: o.Topic}
	byteRate := Series{Name: o.Topic}
	p50 := Series{Name: "p50"}
	p99 := Series{Name: "p99"}
	var prev, prevWidth time.Duration
	var prevRecords, prevBytes int64
	for i, s := range res.Samples {
		x := s.Elapsed.Seconds()
		width := s.Elapsed - prev
		if i > 0 && width < o.SampleEvery/2 && len(rate.Points) > 0 {
			// The last interval is cut short by the end of the run:
			// alone, a few records over a few milliseconds would draw a
			// spike. Fold it into the interval before it.
			width += prevWidth
			s.Records += prevRecords
			s.Bytes += prevBytes
			rate.X, rate.Points = rate.X[:len(rate.X)-1], rate.Points[:len(rate.Points)-1]
			byteRate.X, byteRate.Points = byteRate.X[:len(byteRate.X)-1], byteRate.Points[:len(byteRate.Points)-1]
		}
		if width > 0 {
			rate.X, rate.Points = append(rate.X, x), append(rate.Points, float64(s.Records)/width.Seconds())
			byteRate.X, byteRate.Points = append(byteRate.X, x), append(byteRate.Points, float64(s.Bytes)/width.Seconds())
		}
		prev, prevWidth, prevRecords, prevBytes = s.Elapsed, width, s.Records, s.Bytes
		if s.Records > 0 {
			p50.X, p50.Points = append(p50.X, x), append(p50.Points, ms(s.P50))
			p99.X, p99.Points = append(p99.X, x), append(p99.Points, ms(s.P99))
		}
	}
	facts := [][2]string{
		{"brokers", strings.Join(o.Brokers, ",")},
		{"load", describeLoad(o)},
		{"acked", fmt.Sprintf("%d records, %.1f MB in %v (%.0f records/s)", res.Records, float64(res.Bytes)/1e6, res.Elapsed.Round(time.Millisecond), res.RecordsPerSecond())},
		{"produce latency", fmt.Sprintf("p50 %v, p95 %v, p99 %v, max %v", RoundLatency(res.P50), RoundLatency(res.P95), RoundLatency(res.P99), RoundLatency(res.Max))},
		{"errors", fmt.Sprint(res.Errors)},
	}
	for _, e := range res.ErrorSummary() {
		facts = append(facts, [2]string{"error", e})
	}
	for _, c := range res.RateChanges {
		facts = append(facts, [2]string{"rate changed", fmt.Sprintf("at %v to %g records/s (%s)", c.Elapsed.Round(time.Millisecond), c.Rate, c.By)})
	}
	return Report{
		Title:     "sluice loadtest: " + o.Topic,
		Generated: time.Now(),
		Facts:     facts,
		Charts: []Chart{
			{Title: "Acked records per second", Unit: "records/s", Series: rateSeries(res, rate)},
			{Title: "Produce latency (send to ack)", Unit: "ms", Series: []Series{p50, p99}},
			{Title: "Acked bytes per second (keys and values)", Unit: "bytes/s", Series: []Series{byteRate}},
		},
	}
}

// rateSeries is the achieved rate and, for a schedule or a run whose
// rate was changed while it ran, the asked one, which marks every change.
func rateSeries(res ProduceResult, achieved Series) []Series {
	o := res.Options
	if (o.Profile.Kind != ProfileSchedule && len(res.RateChanges) == 0) || len(achieved.X) == 0 {
		return []Series{achieved}
	}
	target := Series{Name: "scheduled"}
	end := time.Duration(achieved.X[len(achieved.X)-1] * float64(time.Second))
	for at := time.Duration(0); at <= end; at += o.SampleEvery / 10 {
		r := o.Profile.phaseAt(at).rate
		for _, c := range res.RateChanges {
			if c.Elapsed <= at {
				r = c.Rate
			}
		}
		target.X = append(target.X, at.Seconds())
		target.Points = append(target.Points, r)
	}
	return []Series{achieved, target}
}

// describeLoad says in one line what a run was asked to do.
func describeLoad(o ProduceOptions) string {
	rate := "unlimited"
	if o.Profile.Rate > 0 {
		rate = fmt.Sprintf("%g records/s", o.Profile.Rate)
	}
	if o.Profile.Kind == ProfileBursty {
		burst := "unlimited"
		if o.Profile.BurstRate > 0 {
			burst = fmt.Sprintf("%g records/s", o.Profile.BurstRate)
		}
		quiet := rate
		if o.Profile.Rate <= 0 {
			quiet = "silent"
		}
		rate = fmt.Sprintf("bursts of %v at %s every %v, %s between", o.Profile.BurstDuration, burst, o.Profile.BurstEvery, quiet)
	}
	if o.Profile.Kind == ProfileSchedule {
		var steps []string
		for _, p := range o.Profile.Points {
			steps = append(steps, fmt.Sprintf("%v:%g", p.At, p.Rate))
		}
		how := "steps"
		if o.Profile.Ramp {
			how = "ramp"
		}
		rate = fmt.Sprintf("schedule (%s) %s records/s", how, strings.Join(steps, ","))
	}
	keys := "no key"
	if o.Keys > 0 {
		keys = fmt.Sprintf("%d keys", o.Keys)
	}
	values := fmt.Sprintf("%d-byte %s values", o.Size, o.Format)
	if o.Format == FormatAvro {
		values = "Avro values (Confluent wire format, built-in shop-event schema)"
		if o.AvroSchema != "" {
			values = "Avro values (Confluent wire format, schema from --schema)"
		}
	}
	return fmt.Sprintf("%s; %s, %s, %d connection(s), acks=%s, compression=%s",
		rate, values, keys, o.Connections, o.Acks, o.Compression)
}

// MonitorReport draws monitor samples: produce rate per topic and lag per
// group over time, and the broker figures with limits drawn across their
// charts.
func MonitorReport(brokers []string, samples []MonitorSample, limits ...Limit) Report {
	rates := map[string]*Series{}
	lags := map[string]*Series{}
	decoded := map[string]*Series{}
	topicBytes := map[string]*Series{}
	add := func(m map[string]*Series, name string, x, y float64) {
		s := m[name]
		if s == nil {
			s = &Series{Name: name}
			m[name] = s
		}
		s.X, s.Points = append(s.X, x), append(s.Points, y)
	}
	errorsSeen := 0
	for _, s := range samples {
		x := s.Elapsed.Seconds()
		for _, t := range s.Topics {
			if t.HasRate {
				add(rates, t.Topic, x, t.Rate)
			}
			if t.HasBytes {
				add(topicBytes, t.Topic, x, t.BytesRate)
			}
			if t.HasDecoded {
				add(decoded, t.Topic, x, t.DecodedRate)
				if t.FailedRate > 0 {
					add(decoded, t.Topic+" (failed)", x, t.FailedRate)
				}
			}
		}
		for _, g := range s.Groups {
			if g.Err == "" && !g.Missing {
				add(lags, g.Group, x, float64(g.Lag))
			}
		}
		if s.Err != "" {
			errorsSeen++
		}
	}
	facts := [][2]string{{"brokers", strings.Join(brokers, ",")}}
	if n := len(samples); n > 0 {
		facts = append(facts, [2]string{"samples", fmt.Sprintf("%d over %v, from %s", n,
			samples[n-1].Elapsed.Round(time.Millisecond), samples[0].At.Format(time.RFC3339))})
	}
	if errorsSeen > 0 {
		facts = append(facts, [2]string{"samples with errors", fmt.Sprint(errorsSeen)})
	}
	for _, l := range limits {
		facts = append(facts, [2]string{"limit", l.Text})
	}
	charts := []Chart{
		{Title: "Produce rate per topic", Unit: "records/s", Series: sortedSeries(rates)},
		{Title: "Consumer group lag", Unit: "records", Series: sortedSeries(lags)},
	}
	if len(topicBytes) > 0 {
		charts = append(charts, Chart{Title: "Produce bytes per second per topic (as the brokers count them)", Unit: "bytes/s", Series: sortedSeries(topicBytes)})
	}
	if len(decoded) > 0 {
		charts = append(charts, Chart{Title: "Decoded events per second per topic", Unit: "events/s", Series: sortedSeries(decoded)})
	}
	return Report{
		Title:     "sluice monitor",
		Generated: time.Now(),
		Facts:     facts,
		Charts:    append(charts, brokerCharts(samples, limits)...),
	}
}

// maxRequestTypes bounds the request chart's legend: the busiest types.
const maxRequestTypes = 8

// brokerCharts draws the broker figures, per broker and, when there are
// several, in total; none when no sample has broker figures.
func brokerCharts(samples []MonitorSample, limits []Limit) []Chart {
	in, out, conns, load := map[string]*Series{}, map[string]*Series{}, map[string]*Series{}, map[string]*Series{}
	requests := map[string]*Series{}
	volume := map[string]float64{}
	add := func(m map[string]*Series, name string, x, y float64) {
		s := m[name]
		if s == nil {
			s = &Series{Name: name}
			m[name] = s
		}
		s.X, s.Points = append(s.X, x), append(s.Points, y)
	}
	seen := false
	for _, s := range samples {
		if len(s.Brokers) == 0 {
			continue
		}
		seen = true
		x := s.Elapsed.Seconds()
		bs := s.Brokers
		if len(bs) > 1 {
			bs = append(append([]BrokerSample(nil), bs...), s.BrokerTotal())
		}
		for _, b := range bs {
			if !b.ConnectionsUnknown {
				add(conns, b.Broker, x, b.Connections)
			}
			if b.HasRate {
				add(in, b.Broker, x, b.IngressBytes)
				add(out, b.Broker, x, b.EgressBytes)
			}
			if b.HasLoad {
				add(load, b.Broker, x, 100*b.Load)
			}
		}
		if t := s.BrokerTotal(); t.HasRate {
			for k, v := range t.Requests {
				add(requests, k, x, v)
				volume[k] += v
			}
		}
	}
	if !seen {
		return nil
	}
	reqs := sortedSeries(requests)
	if len(reqs) > maxRequestTypes {
		sort.SliceStable(reqs, func(i, j int) bool { return volume[reqs[i].Name] > volume[reqs[j].Name] })
		reqs = reqs[:maxRequestTypes]
	}
	loadSeries := sortedSeries(load)
	loadLines := limitLines(limits, "load")
	if len(loadSeries) > 0 {
		// The ceiling every load figure is a share of: the cores, the
		// request handlers, Confluent's cluster capacity, Managed
		// Kafka's vCPU limit.
		loadLines = append([]Line{{Name: "limit (100%)", Y: 100}}, loadLines...)
	}
	return []Chart{
		{Title: "Broker ingress (record bytes produced)", Unit: "bytes/s", Series: sortedSeries(in), Lines: limitLines(limits, "ingress")},
		{Title: "Broker egress (record bytes fetched)", Unit: "bytes/s", Series: sortedSeries(out), Lines: limitLines(limits, "egress")},
		{Title: "Open client connections", Unit: "connections", Series: sortedSeries(conns), Lines: limitLines(limits, "connections")},
		{Title: "Broker requests per second by type (all brokers)", Unit: "requests/s", Series: reqs, Lines: limitLines(limits, "requests")},
		{Title: "Broker load", Unit: "%", Series: loadSeries, Lines: loadLines},
	}
}

func sortedSeries(m map[string]*Series) []Series {
	out := make([]Series, 0, len(m))
	for _, s := range m {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// RoundLatency rounds d to about three significant digits, for display.
func RoundLatency(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}
