package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sluice-dev/sluice/internal/admin"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/pipeline"
	"github.com/spf13/cobra"
)

func newStatusCommand() *cobra.Command {
	var (
		addr    string
		asJSON  bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "status [PIPELINE...]",
		Short: "Show the status of running pipelines, from their admin API",
		Long: `Status asks a running 'sluice run' or 'sluice demo' for the state of its
pipelines through the admin API and prints a table: state, consumers,
throughput, lag, records in flight, filtered, dead-lettered and skipped records.
Name pipelines to also see their consumers and partitions, consumer
properties, recent batches and merges.

The token (admin.token) is not needed to read status; SLUICE_ADMIN_TOKEN is
sent when set.`,
		Example: `  sluice status
  sluice status events-to-kafka
  sluice status --admin http://10.0.0.5:8080 --json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			c, err := newStatusClient(addr)
			if err != nil {
				return err
			}
			var list struct {
				Pipelines []admin.Summary `json:"pipelines"`
			}
			if err := c.get(ctx, "/v1/pipelines", &list); err != nil {
				return err
			}
			var details []admin.Detail
			for _, name := range args {
				var d admin.Detail
				if err := c.get(ctx, "/v1/pipelines/"+url.PathEscape(name)+"?series=0", &d); err != nil {
					return err
				}
				details = append(details, d)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if len(args) > 0 {
					return enc.Encode(details)
				}
				return enc.Encode(list.Pipelines)
			}
			summaries := list.Pipelines
			if len(args) > 0 {
				summaries = summaries[:0]
				for _, s := range list.Pipelines {
					for _, a := range args {
						if s.Name == a {
							summaries = append(summaries, s)
						}
					}
				}
			}
			printSummaries(out, summaries)
			for _, d := range details {
				fmt.Fprintln(out)
				printDetail(out, d)
			}
			return nil
		},
	}
	def := os.Getenv("SLUICE_ADMIN")
	if def == "" {
		def = "http://127.0.0.1:8080"
	}
	cmd.Flags().StringVar(&addr, "admin", def, "admin API URL or host:port (env SLUICE_ADMIN)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON instead of tables")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "how long to wait for the admin API")
	return cmd
}

type statusClient struct {
	base  string
	token string
	http  *http.Client
}

func newStatusClient(addr string) (*statusClient, error) {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("--admin %q: want a URL such as http://127.0.0.1:8080", addr)
	}
	return &statusClient{base: strings.TrimRight(u.String(), "/"), token: os.Getenv("SLUICE_ADMIN_TOKEN"), http: &http.Client{}}, nil
}

func (c *statusClient) get(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("asking the admin API at %s (is 'sluice run' or 'sluice demo' running with an admin address?): %w", c.base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return fmt.Errorf("admin API: %s", e.Error)
		}
		return fmt.Errorf("admin API: %s %s", path, resp.Status)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decoding %s from %s: %w", path, c.base, err)
	}
	return nil
}

func printSummaries(w io.Writer, ss []admin.Summary) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PIPELINE\tSTATE\tCONSUMERS\tIN/S\tOUT/S\tLAG\tLAG AGE\tFRESHNESS\tIN FLIGHT\tRECORDS IN\tRECORDS OUT\tFILTERED\tDLQ\tSKIPPED\tERRORS")
	for _, s := range ss {
		if s.Degraded && s.State == pipeline.StateRunning {
			s.State = "degraded"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.State, s.Consumers,
			rate(s.RecordsInPerSec), rate(s.RecordsOutPerSec), count(s.Lag), age(s.LagSeconds), freshness(s.FreshnessSeconds), count(s.InFlightRecords),
			count(s.RecordsIn), count(s.RecordsOut), count(s.Filtered), count(s.DeadLettered), count(s.Skipped), count(s.Errors))
	}
	tw.Flush()
	for _, s := range ss {
		if s.Error != "" {
			fmt.Fprintf(w, "%s failed: %s\n", s.Name, s.Error)
		}
		if s.Source != nil && s.Source.State != connector.SourceHealthy && s.State != pipeline.StateStopped && s.State != pipeline.StateFailed {
			fmt.Fprintf(w, "%s: source %s\n", s.Name, sourceHealth(*s.Source, time.Now()))
		}
	}
}

// sourceHealth says how the source's servers answer: "healthy", or
// "unreachable for 42s (since 12:03:14, 17 errors): the last error".
func sourceHealth(h connector.SourceHealth, now time.Time) string {
	if h.State == connector.SourceHealthy {
		return h.State
	}
	s := h.State
	if !h.Since.IsZero() {
		s += fmt.Sprintf(" for %s (since %s, %s errors)", now.Sub(h.Since).Round(time.Second), h.Since.Local().Format("15:04:05"), count(h.Errors))
	}
	if h.LastError != "" {
		s += ": " + h.LastError
	}
	return s
}

func printDetail(w io.Writer, d admin.Detail) {
	up := ""
	if !d.Since.IsZero() {
		up = fmt.Sprintf(", up %s", time.Since(d.Since).Round(time.Second))
	}
	fmt.Fprintf(w, "%s: %s%s; %s batches, %s retries\n", d.Name, d.State, up, count(d.Batches), count(d.Retries))
	if d.Error != "" {
		fmt.Fprintf(w, "  error: %s\n", d.Error)
	}
	if d.Source != nil {
		fmt.Fprintf(w, "  source: %s\n", sourceHealth(*d.Source, time.Now()))
	}
	printEventTime(w, d.Status)
	printTransforms(w, d)
	for _, r := range d.Retrying {
		fmt.Fprintf(w, "  retrying %s since %s (%d attempts): %s\n", r.What, r.Since.Local().Format("15:04:05"), r.Attempts, r.LastError)
	}
	for _, c := range d.Consumers {
		for _, warning := range c.Warnings {
			fmt.Fprintf(w, "  %s: %s\n", c.ID, warning)
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  CONSUMER\tPARTITIONS\tLAG")
	for _, c := range d.Consumers {
		var parts []string
		for _, a := range c.Assigned {
			ps := make([]string, len(a.Partitions))
			for i, p := range a.Partitions {
				ps[i] = fmt.Sprint(p)
			}
			parts = append(parts, a.Topic+"["+strings.Join(ps, ",")+"]")
		}
		var lag int64
		for _, t := range c.Lag {
			for _, l := range t {
				lag += l
			}
		}
		owned := strings.Join(parts, " ")
		if c.WaitingSince != nil && len(parts) == 0 {
			owned = fmt.Sprintf("waiting for partitions since %s (%s)", c.WaitingSince.Local().Format("15:04:05"), time.Since(*c.WaitingSince).Round(time.Second))
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", c.ID, owned, count(lag))
	}
	tw.Flush()
	if d.Properties != nil {
		fmt.Fprintf(w, "  properties (records per poll in use: %d):", d.MaxPollRecords)
		names := make([]string, 0, len(d.Properties))
		for k := range d.Properties {
			names = append(names, k)
		}
		sort.Strings(names)
		if len(names) == 0 {
			fmt.Fprint(w, " defaults")
		}
		for _, k := range names {
			fmt.Fprintf(w, " %s=%v", k, d.Properties[k])
		}
		fmt.Fprintln(w)
	}
	if n := len(d.RecentBatches); n > 0 {
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "  STARTED\tRECORDS\tBYTES\tTOOK\tWAITED\tCUT BY\t")
		for i := n - 1; i >= max(0, n-8); i-- {
			b := d.RecentBatches[i]
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t\n", b.Started.Local().Format("15:04:05.000"), count(int64(b.Records)), count(int64(b.Bytes)),
				b.Took.Round(100*time.Microsecond), b.Lingered.Round(100*time.Microsecond), b.Trigger)
		}
		tw.Flush()
	}
	if d.Merge != nil {
		hist := d.Merge.History
		if len(hist) == 0 {
			fmt.Fprintln(w, "  merges: none yet")
			return
		}
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  MERGE STARTED\tTRIGGER\tRECORDS\tBATCH\tTOOK\tPAUSED\tEND TO END\tRESULT")
		for i := len(hist) - 1; i >= max(0, len(hist)-8); i-- {
			m := hist[i]
			result := "ok"
			if m.Error != "" {
				result = fmt.Sprintf("attempt %d failed: %s", m.Attempt, m.Error)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", m.Started.Local().Format("15:04:05.000"), m.Trigger, count(m.Records), m.Batch,
				m.Took.Round(time.Millisecond), m.Paused.Round(time.Millisecond), m.EndToEnd.Round(time.Millisecond), result)
		}
		tw.Flush()
	}
}

// printTransforms shows the transforms' steps and what passed them, and
// the records each routed sink made durable.
func printTransforms(w io.Writer, d admin.Detail) {
	if len(d.Transforms) > 0 {
		fmt.Fprintf(w, "  transforms: %s; in %s, filtered %s\n", strings.Join(d.Transforms, " | "), count(d.RecordsIn), count(d.Filtered))
	}
	if len(d.Routes) > 0 {
		var parts []string
		for _, r := range d.Routes {
			name := r.Sink
			if r.Default {
				name += " (default)"
			}
			parts = append(parts, fmt.Sprintf("%s %s", name, count(r.Out)))
		}
		fmt.Fprintf(w, "  routes, out per sink: %s\n", strings.Join(parts, ", "))
	}
}

// count prints 1234567 as 1,234,567.
func count(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func rate(r float64) string {
	switch {
	case r >= 1e6:
		return fmt.Sprintf("%.2fM", r/1e6)
	case r >= 1e4:
		return fmt.Sprintf("%.1fk", r/1e3)
	default:
		return count(int64(r + 0.5))
	}
}

// age prints a lag in seconds as 0s, 3.2s or 4m10s.
func age(seconds float64) string {
	d := time.Duration(seconds * float64(time.Second))
	if d < time.Minute {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// freshness is now minus the watermark in seconds, "-" while unknown.
func freshness(seconds *float64) string {
	if seconds == nil {
		return "-"
	}
	return strconv.FormatFloat(*seconds, 'f', 1, 64) + "s"
}

// printEventTime shows the watermark, freshness and each partition's
// event time (the largest made durable).
func printEventTime(w io.Writer, st pipeline.Status) {
	if st.Watermark != nil {
		fmt.Fprintf(w, "  watermark %s, freshness %s\n", st.Watermark.UTC().Format(time.RFC3339), freshness(st.FreshnessSeconds))
	}
	for _, p := range st.EventTime {
		at := "none written"
		if !p.EventTime.IsZero() {
			at = p.EventTime.UTC().Format(time.RFC3339)
		}
		idle := ""
		if p.Idle {
			idle = " (idle: does not hold the watermark)"
		}
		fmt.Fprintf(w, "  event time %s[%d]: %s, %d in flight%s\n", p.Topic, p.Partition, at, p.InFlight, idle)
	}
}
