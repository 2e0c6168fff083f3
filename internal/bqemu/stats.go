package bqemu

import (
	"maps"
	"net"
	"sync"
	"sync/atomic"
)

// Stats is a snapshot of the emulator's counters. Peaks and totals count
// since New or the last ResetStats.
type Stats struct {
	// Connections are TCP connections to the gRPC listener(s).
	Connections      int64 `json:"connections"`
	PeakConnections  int64 `json:"peak_connections"`
	TotalConnections int64 `json:"total_connections"`
	// Streams are AppendRows bidi streams, what BigQuery's concurrent
	// connections quota counts.
	Streams         int64 `json:"streams"`
	PeakStreams     int64 `json:"peak_streams"`
	TotalStreams    int64 `json:"total_streams"`
	RejectedStreams int64 `json:"rejected_streams"` // refused by Faults.MaxConnections
	// Appends are AppendRows requests answered, FailedAppends those
	// answered with an error (including injected ones).
	Appends        int64 `json:"appends"`
	FailedAppends  int64 `json:"failed_appends"`
	RowsAppended   int64 `json:"rows_appended"`
	RowErrors      int64 `json:"row_errors"`
	FaultsInjected int64 `json:"faults_injected"`
	// RowsByTable counts rows accepted by AppendRows per "project.dataset.table",
	// whether or not their stream has been committed yet.
	RowsByTable map[string]int64 `json:"rows_by_table"`
}

type gauge struct {
	cur, peak, total atomic.Int64
}

func (g *gauge) inc() {
	g.total.Add(1)
	g.raisePeak(g.cur.Add(1))
}

// tryInc increments unless that would exceed limit (0: no limit).
func (g *gauge) tryInc(limit int64) bool {
	for {
		n := g.cur.Load()
		if limit > 0 && n >= limit {
			return false
		}
		if g.cur.CompareAndSwap(n, n+1) {
			g.total.Add(1)
			g.raisePeak(n + 1)
			return true
		}
	}
}

func (g *gauge) raisePeak(n int64) {
	for {
		p := g.peak.Load()
		if n <= p || g.peak.CompareAndSwap(p, n) {
			return
		}
	}
}

func (g *gauge) dec() { g.cur.Add(-1) }

func (g *gauge) reset() {
	g.peak.Store(g.cur.Load())
	g.total.Store(0)
}

type counters struct {
	conns, streams gauge
	rejectedStreams,
	appends, failedAppends, rowsAppended, rowErrors, faultsInjected atomic.Int64

	mu          sync.Mutex
	rowsByTable map[string]int64
}

func newCounters() *counters { return &counters{rowsByTable: make(map[string]int64)} }

func (c *counters) addRows(k tableKey, n int) {
	c.rowsAppended.Add(int64(n))
	c.mu.Lock()
	c.rowsByTable[k.project+"."+k.dataset+"."+k.table] += int64(n)
	c.mu.Unlock()
}

func (c *counters) snapshot() Stats {
	c.mu.Lock()
	byTable := maps.Clone(c.rowsByTable)
	c.mu.Unlock()
	return Stats{
		Connections: c.conns.cur.Load(), PeakConnections: c.conns.peak.Load(), TotalConnections: c.conns.total.Load(),
		Streams: c.streams.cur.Load(), PeakStreams: c.streams.peak.Load(), TotalStreams: c.streams.total.Load(),
		RejectedStreams: c.rejectedStreams.Load(),
		Appends:         c.appends.Load(), FailedAppends: c.failedAppends.Load(),
		RowsAppended: c.rowsAppended.Load(), RowErrors: c.rowErrors.Load(),
		FaultsInjected: c.faultsInjected.Load(),
		RowsByTable:    byTable,
	}
}

func (c *counters) reset() {
	c.conns.reset()
	c.streams.reset()
	for _, a := range []*atomic.Int64{&c.rejectedStreams, &c.appends, &c.failedAppends, &c.rowsAppended, &c.rowErrors, &c.faultsInjected} {
		a.Store(0)
	}
	c.mu.Lock()
	clear(c.rowsByTable)
	c.mu.Unlock()
}

// countingListener counts TCP connections at the listener, below gRPC, so
// the numbers are what a network quota or a firewall would see.
type countingListener struct {
	net.Listener
	g *gauge
}

func (l *countingListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.g.inc()
	return &countedConn{Conn: conn, g: l.g}, nil
}

type countedConn struct {
	net.Conn
	g    *gauge
	once sync.Once
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.g.dec)
	return err
}
