package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// MonitorOptions configure Monitor.
type MonitorOptions struct {
	Brokers []string
	// Topics to sample; empty means every topic but internal ones
	// (names starting with "__"), looked up at every sample so that
	// topics created meanwhile appear.
	Topics []string
	// Groups whose lag to sample; empty means every group the brokers
	// list, looked up at every sample.
	Groups []string
	// Interval between samples (default 1s, at least 100ms).
	Interval time.Duration
	// Duration of the whole run (0: until ctx ends).
	Duration time.Duration
	// OnSample, if set, is called after each sample, from Monitor's
	// goroutine.
	OnSample func(MonitorSample)
	// ClientOptions are added to the admin client (TLS, SASL, ...).
	ClientOptions []kgo.Opt

	// MetricsURLs are Prometheus endpoints serving broker metrics, read
	// at every sample: the embedded broker's (`sluice dev`), one JMX
	// exporter or Redpanda /public_metrics per broker, or Confluent
	// Cloud's export. None: no broker figures.
	MetricsURLs []string
	// MetricsSource says whose names the endpoints serve: auto (default),
	// sluice, jmx, redpanda or confluent.
	MetricsSource string
	// Decode "avro" also consumes the topics from their end and decodes
	// every value (Confluent wire format, schemas from RegistryURL): each
	// topic's sample then has the events/s that decoded and that failed.
	Decode      string
	RegistryURL string
	// MetricsUser and MetricsPassword authenticate to the endpoints with
	// basic auth (Confluent Cloud: an API key and its secret).
	MetricsUser, MetricsPassword string
	// GCPProject and GCPCluster read a Google Managed Kafka cluster's
	// figures from Cloud Monitoring instead of MetricsURLs, with
	// Application Default Credentials (see gcpmonitoring.go).
	GCPProject, GCPCluster string
	// cloudMonitoringURL replaces https://monitoring.googleapis.com, and
	// cloudMonitoringToken the credentials, in tests.
	cloudMonitoringURL   string
	cloudMonitoringToken func(context.Context) (string, error)
}

// brokerSource reads the broker figures of one sample.
type brokerSource interface {
	scrape(ctx context.Context) ([]BrokerSample, error)
}

// MonitorSample is what one interval saw. Topics and Groups are sorted by
// name.
type MonitorSample struct {
	At      time.Time
	Elapsed time.Duration // since the first sample
	Topics  []TopicSample
	Groups  []GroupSample
	// Brokers are the broker figures, sorted by broker, when
	// MetricsURLs are given; BrokerTotal adds them up.
	Brokers []BrokerSample
	// Err is set when the brokers could not be asked this time; the
	// sample then holds what could be read, possibly nothing.
	Err string
}

// TopicSample is a topic's end offsets summed over partitions, and the
// produce rate since the previous sample (records/s, from the growth of
// the end offsets: transaction markers count as records).
type TopicSample struct {
	Topic      string
	Partitions int
	EndOffset  int64
	Rate       float64
	HasRate    bool // false on the first sample of the topic
	// DecodedRate and FailedRate are events/s decoded and failing to
	// decode, with MonitorOptions.Decode (HasDecoded).
	DecodedRate, FailedRate float64
	HasDecoded              bool
	// BytesRate is record bytes/s produced to the topic, as the brokers
	// count them (with MetricsURLs, from a source that counts per topic).
	BytesRate float64
	HasBytes  bool
}

// GroupSample is a consumer group's lag: end offsets minus committed
// offsets, summed over the partitions the group has commits for.
type GroupSample struct {
	Group   string
	State   string
	Members int
	Lag     int64
	// LagByTopic splits Lag by topic.
	LagByTopic map[string]int64
	// LagSeconds is the lag in time: how long the oldest record the
	// group has not consumed has waited (by its timestamp); HasLagSeconds
	// is false when nothing lags or it could not be read.
	LagSeconds    float64
	HasLagSeconds bool
	// Missing says the group does not exist (yet): watching a group
	// before its consumers start is normal, not an error.
	Missing bool
	Err     string
}

// Topic returns the sample of topic, if present.
func (s MonitorSample) Topic(topic string) (TopicSample, bool) {
	i := slices.IndexFunc(s.Topics, func(t TopicSample) bool { return t.Topic == topic })
	if i < 0 {
		return TopicSample{}, false
	}
	return s.Topics[i], true
}

// BrokerTotal is every broker's figures added up (see TotalBrokers).
func (s MonitorSample) BrokerTotal() BrokerSample { return TotalBrokers(s.Brokers) }

// Group returns the sample of group, if present.
func (s MonitorSample) Group(group string) (GroupSample, bool) {
	i := slices.IndexFunc(s.Groups, func(g GroupSample) bool { return g.Group == group })
	if i < 0 {
		return GroupSample{}, false
	}
	return s.Groups[i], true
}

// Monitor samples topics and groups every Interval until Duration has
// passed or ctx ends, and returns every sample. Its error is for options
// and a client that cannot start; brokers that do not answer one sample
// are reported in that sample's Err and asked again at the next.
func Monitor(ctx context.Context, o MonitorOptions) ([]MonitorSample, error) {
	if o.Interval == 0 {
		o.Interval = time.Second
	}
	var errs []error
	if len(o.Brokers) == 0 {
		errs = append(errs, errors.New("--brokers: is required"))
	}
	if o.Interval < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("--interval: %v is below 100ms", o.Interval))
	}
	if o.Duration < 0 {
		errs = append(errs, errors.New("--duration: must be >= 0"))
	}
	switch o.MetricsSource {
	case "", MetricsAuto, MetricsSluice, MetricsJMX, MetricsRedpanda, MetricsConfluent:
	default:
		errs = append(errs, fmt.Errorf("--metrics-source: %q: use auto, sluice, jmx, redpanda or confluent", o.MetricsSource))
	}
	switch o.Decode {
	case "":
	case FormatAvro:
		if o.RegistryURL == "" {
			errs = append(errs, errors.New("--registry-url: is required with --decode avro"))
		}
	default:
		errs = append(errs, fmt.Errorf("--decode: %q: use avro", o.Decode))
	}
	for _, u := range o.MetricsURLs {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			errs = append(errs, fmt.Errorf("--metrics-url: %s: want an http:// or https:// URL", redactURL(u)))
		}
	}
	if (o.GCPProject == "") != (o.GCPCluster == "") {
		errs = append(errs, errors.New("--gcp-project and --cluster: give both, to read a Google Managed Kafka cluster from Cloud Monitoring"))
	}
	if o.GCPProject != "" && len(o.MetricsURLs) > 0 {
		errs = append(errs, errors.New("--metrics-url: give it or --gcp-project, not both"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(o.Brokers...)}, o.ClientOptions...)...)
	if err != nil {
		return nil, fmt.Errorf("creating admin client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var scraper brokerSource
	timeout := max(2*o.Interval, 5*time.Second)
	switch {
	case len(o.MetricsURLs) > 0:
		scraper = &metricsScraper{urls: o.MetricsURLs, source: o.MetricsSource, user: o.MetricsUser,
			password: o.MetricsPassword, client: &http.Client{Timeout: timeout}}
	case o.GCPProject != "":
		cm := newCloudMonitoring(o.GCPProject, o.GCPCluster, timeout)
		if o.cloudMonitoringURL != "" {
			cm.endpoint = o.cloudMonitoringURL
		}
		if o.cloudMonitoringToken != nil {
			cm.token = o.cloudMonitoringToken
		}
		scraper = cm
	}

	if o.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}
	var decoding *decodeCounter
	if o.Decode != "" {
		decoding = &decodeCounter{decoded: map[string]int64{}, failed: map[string]int64{}}
		decodeCtx, stopDecoding := context.WithCancel(ctx)
		started, done := make(chan error, 1), make(chan struct{})
		go func() {
			defer close(done)
			runDecodeCounter(decodeCtx, o, decoding, started)
		}()
		defer func() {
			stopDecoding()
			<-done
		}()
		if err := <-started; err != nil {
			return nil, err
		}
	}
	ages := &lagAges{}
	var prevDecoded, prevFailed map[string]int64
	ticker := time.NewTicker(o.Interval)
	defer ticker.Stop()
	var samples []MonitorSample
	previous := map[string]TopicSample{}
	var previousAt, first time.Time
	for {
		// One sample may not outlive the interval by much: a broker that
		// hangs shows up as a sample with an error, not as a stall.
		sampleCtx, cancel := context.WithTimeout(ctx, max(2*o.Interval, 5*time.Second))
		s := takeSample(sampleCtx, adm, o, previous, previousAt, ages)
		if decoding != nil {
			decoded, failed, lastErr := decoding.counts()
			if prevDecoded != nil && s.At.After(previousAt) {
				secs := s.At.Sub(previousAt).Seconds()
				for i := range s.Topics {
					tp := &s.Topics[i]
					tp.DecodedRate = float64(decoded[tp.Topic]-prevDecoded[tp.Topic]) / secs
					tp.FailedRate = float64(failed[tp.Topic]-prevFailed[tp.Topic]) / secs
					tp.HasDecoded = true
				}
				if len(failed) > 0 && lastErr != "" && sumValues(failed) > sumValues(prevFailed) {
					s.Err = strings.TrimPrefix(s.Err+"; "+lastErr, "; ")
				}
			}
			prevDecoded, prevFailed = decoded, failed
		}
		if scraper != nil {
			brokers, err := scraper.scrape(sampleCtx)
			s.Brokers = brokers
			for i := range s.Topics {
				tp := &s.Topics[i]
				for _, b := range brokers {
					if v, ok := b.IngressByTopic[tp.Topic]; ok && b.HasRate {
						tp.BytesRate += v
						tp.HasBytes = true
					}
				}
			}
			if err != nil {
				s.Err = strings.TrimPrefix(s.Err+"; "+err.Error(), "; ")
			}
		}
		cancel()
		if ctx.Err() != nil {
			// A sample cut short by the end of the run is not data.
			return samples, nil
		}
		if first.IsZero() {
			first = s.At
		}
		s.Elapsed = s.At.Sub(first)
		for _, t := range s.Topics {
			previous[t.Topic] = t
		}
		previousAt = s.At
		samples = append(samples, s)
		if o.OnSample != nil {
			o.OnSample(s)
		}
		select {
		case <-ctx.Done():
			return samples, nil
		case <-ticker.C:
		}
	}
}

func sumValues(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

func takeSample(ctx context.Context, adm *kadm.Client, o MonitorOptions, previous map[string]TopicSample, previousAt time.Time, ages *lagAges) MonitorSample {
	var s MonitorSample
	var problems []string
	ends, err := adm.ListEndOffsets(ctx, o.Topics...)
	// The time of the answer, not of the question, is what the offsets
	// describe, and what the rate is computed over.
	s.At = time.Now()
	if err != nil {
		problems = append(problems, fmt.Sprintf("listing end offsets: %v", err))
	}
	byTopic := map[string]*TopicSample{}
	ends.Each(func(lo kadm.ListedOffset) {
		if lo.Err != nil || (len(o.Topics) == 0 && strings.HasPrefix(lo.Topic, "__")) {
			return
		}
		t := byTopic[lo.Topic]
		if t == nil {
			t = &TopicSample{Topic: lo.Topic}
			byTopic[lo.Topic] = t
		}
		t.Partitions++
		t.EndOffset += lo.Offset
	})
	for _, t := range byTopic {
		if p, ok := previous[t.Topic]; ok && p.Partitions == t.Partitions && s.At.After(previousAt) {
			t.Rate = max(0, float64(t.EndOffset-p.EndOffset)/s.At.Sub(previousAt).Seconds())
			t.HasRate = true
		}
		s.Topics = append(s.Topics, *t)
	}
	slices.SortFunc(s.Topics, func(a, b TopicSample) int { return strings.Compare(a.Topic, b.Topic) })

	groups := o.Groups
	if len(groups) == 0 {
		listed, err := adm.ListGroups(ctx)
		if err != nil {
			problems = append(problems, fmt.Sprintf("listing groups: %v", err))
		}
		groups = listed.Groups()
	}
	if len(groups) > 0 {
		lags, err := adm.Lag(ctx, groups...)
		if err != nil {
			problems = append(problems, fmt.Sprintf("describing groups: %v", err))
		}
		for _, l := range lags.Sorted() {
			g := groupSample(l)
			if !g.Missing && g.Err == "" && g.Lag > 0 {
				g.LagSeconds, g.HasLagSeconds = ages.get(ctx, append([]kgo.Opt{kgo.SeedBrokers(o.Brokers...)}, o.ClientOptions...), l, s.At)
			}
			s.Groups = append(s.Groups, g)
		}
	}
	s.Err = strings.Join(problems, "; ")
	return s
}

func groupSample(l kadm.DescribedGroupLag) GroupSample {
	g := GroupSample{Group: l.Group, State: l.State, Members: len(l.Members), LagByTopic: map[string]int64{}}
	if err := l.Error(); errors.Is(err, kerr.GroupIDNotFound) || l.State == "Dead" {
		g.Missing = true
		return g
	} else if err != nil {
		g.Err = err.Error()
		return g
	}
	for _, m := range l.Lag.Sorted() {
		if m.Err != nil || m.Lag < 0 {
			continue
		}
		g.Lag += m.Lag
		g.LagByTopic[m.Topic] += m.Lag
	}
	return g
}
