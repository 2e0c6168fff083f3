// Package faultproxy is a TCP proxy for tests that sits between a client
// (Sluice) and a real server (PostgreSQL, the Kafka broker, the schema
// registry, ...) and plays the network and server failures that a unit
// test cannot reach otherwise. Its behaviour can be changed while
// connections are open; every method is safe for concurrent use.
//
// The modes, and the real failure each one imitates:
//
//   - Pass (the default): bytes flow both ways unchanged.
//   - Latency(d): every chunk is held d before it is forwarded, in both
//     directions: a slow or distant network. Each direction of a
//     connection forwards one chunk at a time, so latency also lowers
//     throughput, as on a long fat pipe with a small window.
//   - ResetAll(): every open connection is reset (TCP RST) at once, on
//     the client's and on the server's side: a server that crashed, a
//     load balancer or NAT that dropped its state, a failover.
//   - BlackHole(): connections stay open (and new ones are accepted) but
//     nothing is forwarded either way; what is in flight is held, not
//     lost, and flows again after Pass, as after a network partition
//     that healed before TCP gave up. Clients see requests that never
//     answer and must time out. A new connection's upstream is dialled
//     only when the black hole ends.
//   - Refuse(): the listener is closed, so new connections are refused
//     (ECONNREFUSED) while the open ones go on: a server whose process is
//     gone or not yet listening. Combine with ResetAll for a server that
//     is down. Leaving Refuse listens again on the same address.
//   - DropAnswers(n, d): requests are forwarded but the next n bytes of
//     answers (or the answers of the next d) are discarded: the server
//     applied the request, the client never hears that it did (the
//     classic "commit succeeded but the acknowledgement was lost"). The
//     client's protocol stream is then out of step; it times out or
//     fails, and its retry meets a server that already applied it.
//     DropAnswersAfter does the same on one connection, armed by a
//     request that matches.
//   - Strand(): every connection open at that moment is stranded for
//     good: the client's side stays open, what it sends is swallowed and
//     nothing ever answers, with no FIN and no RST; the server's side is
//     closed, so the server ends its session (and rolls back what it
//     held). This is the half-open connection of a server that restarted
//     or failed over, or of a NAT box or load balancer that forgot the
//     flow: only a deadline or TCP keepalive on the client ends it. New
//     connections pass as the state allows; Pass does not revive the
//     stranded ones.
//   - CutAfter(match, k): the first connection whose client->server
//     stream has a chunk for which match reports true is reset after k
//     more bytes (counted from that chunk's first byte) have been
//     forwarded: a connection lost in the middle of a large request, such
//     as a PostgreSQL COPY or a Kafka produce.
//
// A "chunk" is what one read from the socket returned (up to 32 KiB). A
// request a client writes at once normally arrives as one chunk on
// loopback, which is what Match functions (Contains, KafkaRequest) rely
// on.
//
// For a server that tells clients where to connect, as a Kafka broker
// does in its metadata, ListenBehind gives the server a listener that
// advertises the proxy, so that every client connection goes through it.
//
// Close stops every goroutine the proxy started and resets what is open.
package faultproxy

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// state is what the proxy does with connections as a whole.
type state int

const (
	statePass state = iota
	stateBlackHole
	stateRefuse
)

// Match decides, on a chunk of client->server bytes, whether an armed
// fault fires.
type Match func(chunk []byte) bool

// Contains matches a chunk holding marker.
func Contains(marker []byte) Match {
	return func(chunk []byte) bool { return bytes.Contains(chunk, marker) }
}

// Stats counts what went through the proxy.
type Stats struct {
	Accepted     int64 // client connections accepted
	Open         int64 // connections open now
	Resets       int64 // connections reset by ResetAll, CutAfter or Close
	Cuts         int64 // CutAfter faults that fired
	Drops        int64 // DropAnswersAfter faults that fired
	Stranded     int64 // connections stranded by Strand
	BytesUp      int64 // client -> server, forwarded
	BytesDown    int64 // server -> client, forwarded
	DroppedBytes int64 // server -> client, discarded by DropAnswers
}

// Proxy forwards TCP connections from Addr to a target address.
type Proxy struct {
	target string
	addr   string

	mu      sync.Mutex
	state   state
	changed chan struct{} // closed and replaced whenever state changes
	latency time.Duration
	ln      net.Listener // nil while refusing
	conns   map[*conn]struct{}
	closed  bool

	// DropAnswers on every connection.
	dropBytes int64     // > 0: bytes left to drop
	dropUntil time.Time // non-zero: drop until then
	dropAny   bool      // a global drop is armed

	cut  *armed // CutAfter
	drop *armed // DropAnswersAfter

	stats Stats
	wg    sync.WaitGroup
}

// armed is a fault waiting for a matching chunk.
type armed struct {
	match Match
	k     int64         // CutAfter: bytes to forward before the cut
	n     int64         // DropAnswersAfter: bytes to drop
	d     time.Duration // DropAnswersAfter: how long to drop
}

// New listens on 127.0.0.1:0 and forwards every connection to target.
func New(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening for the proxy to %s: %w", target, err)
	}
	p := &Proxy{
		target:  target,
		addr:    ln.Addr().String(),
		changed: make(chan struct{}),
		ln:      ln,
		conns:   map[*conn]struct{}{},
	}
	p.wg.Add(1)
	go p.accept(ln)
	return p, nil
}

// Addr is the address clients connect to (host:port).
func (p *Proxy) Addr() string { return p.addr }

// Target is the address the proxy forwards to.
func (p *Proxy) Target() string { return p.target }

// Stats returns the counters so far.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Open = int64(len(p.conns))
	return s
}

// Pass forwards everything again: it ends BlackHole, Refuse (listening
// again on the same address) and DropAnswers. It keeps the latency
// (Latency(0) removes it) and faults armed on a match (Disarm removes
// them).
func (p *Proxy) Pass() error { return p.setState(statePass) }

// BlackHole holds every byte, both ways, until the next Pass.
func (p *Proxy) BlackHole() error { return p.setState(stateBlackHole) }

// Refuse closes the listener: new connections are refused until Pass or
// BlackHole; open connections are kept.
func (p *Proxy) Refuse() error { return p.setState(stateRefuse) }

// Latency holds every chunk d before forwarding it (0: none).
func (p *Proxy) Latency(d time.Duration) {
	p.mu.Lock()
	p.latency = d
	p.mu.Unlock()
}

// ResetAll resets every open connection now; new ones are accepted as the
// state allows.
func (p *Proxy) ResetAll() {
	p.mu.Lock()
	conns := make([]*conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.reset()
	}
}

// Strand strands every open connection (see the package comment): the
// client's side is kept open and silent until the client closes it, the
// server's side is closed now.
func (p *Proxy) Strand() {
	p.mu.Lock()
	var servers []net.Conn
	for c := range p.conns {
		if c.stranded {
			continue
		}
		c.stranded = true
		p.stats.Stranded++
		if c.server != nil {
			servers = append(servers, c.server)
		}
	}
	p.mu.Unlock()
	for _, s := range servers {
		_ = s.Close()
	}
}

// DropAnswers discards the next n bytes the server sends, on every
// connection, or what it sends for the next d, whichever ends first (n <=
// 0: no byte limit; d <= 0: no time limit; both: until Pass).
func (p *Proxy) DropAnswers(n int64, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dropAny = true
	p.dropBytes = n
	p.dropUntil = time.Time{}
	if d > 0 {
		p.dropUntil = time.Now().Add(d)
	}
}

// DropAnswersAfter arms a drop on one connection: after the first
// client->server chunk that matches is forwarded, that connection's next n
// answer bytes (or its answers for d; see DropAnswers) are discarded. It
// fires once; a new call replaces an unfired one.
func (p *Proxy) DropAnswersAfter(match Match, n int64, d time.Duration) {
	p.mu.Lock()
	p.drop = &armed{match: match, n: n, d: d}
	p.mu.Unlock()
}

// CutAfter arms a cut: the first connection with a client->server chunk
// that matches (any chunk when match is nil) is reset once k bytes,
// counted from the first byte of that chunk, have been forwarded. It fires
// once; a new call replaces an unfired one.
func (p *Proxy) CutAfter(match Match, k int64) {
	p.mu.Lock()
	p.cut = &armed{match: match, k: k}
	p.mu.Unlock()
}

// Disarm removes armed faults that have not fired and ends DropAnswers.
func (p *Proxy) Disarm() {
	p.mu.Lock()
	p.cut, p.drop = nil, nil
	p.dropAny = false
	p.mu.Unlock()
}

// Close stops listening, resets every connection and waits for every
// goroutine of the proxy to end.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	var err error
	if p.ln != nil {
		err = p.ln.Close()
		p.ln = nil
	}
	p.mu.Unlock()
	p.ResetAll()
	p.wg.Wait()
	return err
}

func (p *Proxy) setState(s state) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("proxy closed")
	}
	if s == statePass {
		p.dropAny = false
	}
	if s == p.state {
		return nil
	}
	if s == stateRefuse {
		if p.ln != nil {
			_ = p.ln.Close()
			p.ln = nil
		}
	} else if p.ln == nil {
		ln, err := listenAgain(p.addr)
		if err != nil {
			return err
		}
		p.ln = ln
		p.wg.Add(1)
		go p.accept(ln)
	}
	p.state = s
	close(p.changed)
	p.changed = make(chan struct{})
	return nil
}

// listenAgain listens on addr, which the proxy held before: another
// process may have taken the port meanwhile (unlikely on loopback); a
// port in TIME_WAIT is freed within a few seconds.
func listenAgain(addr string) (net.Listener, error) {
	var err error
	for range 50 {
		var ln net.Listener
		if ln, err = net.Listen("tcp", addr); err == nil {
			return ln, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil, fmt.Errorf("listening again on %s: %w", addr, err)
}

func (p *Proxy) accept(ln net.Listener) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return // closed by Refuse or Close
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			resetConn(c)
			return
		}
		ctx, end := context.WithCancel(context.Background())
		cn := &conn{p: p, client: c, ctx: ctx, end: end, gone: ctx.Done(), cutLeft: -1}
		p.conns[cn] = struct{}{}
		p.stats.Accepted++
		p.wg.Add(1)
		p.mu.Unlock()
		go cn.run()
	}
}

// waitPassing blocks while the proxy is a black hole; false when the
// connection ended meanwhile (Close resets every connection).
func (p *Proxy) waitPassing(gone <-chan struct{}) bool {
	for {
		p.mu.Lock()
		s, ch := p.state, p.changed
		p.mu.Unlock()
		if s != stateBlackHole {
			return true
		}
		select {
		case <-ch:
		case <-gone:
			return false
		}
	}
}

// hold waits the latency; false when the connection ended meanwhile.
func (p *Proxy) hold(gone <-chan struct{}) bool {
	p.mu.Lock()
	d := p.latency
	p.mu.Unlock()
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-gone:
		return false
	}
}

// resetConn closes c with an RST instead of a FIN.
func resetConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// ListenBehind listens on address for a server and puts a new proxy in
// front of it. The listener's Addr reports the proxy's address: a server
// that tells clients where to connect (a Kafka broker's metadata) sends
// them through the proxy. With kfake:
//
//	kfake.ListenFn(func(network, address string) (net.Listener, error) {
//		ln, p, err := faultproxy.ListenBehind(network, address)
//		...
//	})
//
// The caller closes the proxy; the server closes the listener.
func ListenBehind(network, address string) (net.Listener, *Proxy, error) {
	ln, err := net.Listen(network, address)
	if err != nil {
		return nil, nil, err
	}
	p, err := New(ln.Addr().String())
	if err != nil {
		ln.Close()
		return nil, nil, err
	}
	addr, err := net.ResolveTCPAddr("tcp", p.Addr())
	if err != nil {
		ln.Close()
		p.Close()
		return nil, nil, err
	}
	return advertisedListener{Listener: ln, addr: addr}, p, nil
}

// advertisedListener is a listener that reports another address.
type advertisedListener struct {
	net.Listener
	addr net.Addr
}

func (l advertisedListener) Addr() net.Addr { return l.addr }

// KafkaRequest matches a chunk holding a Kafka request with the given API
// key (kmsg.EndTxn.Int16(), kmsg.Produce.Int16(), ...): requests are
// size-prefixed frames that start with their key. It looks at the frames
// whose start is in the chunk.
func KafkaRequest(apiKey int16) Match {
	return func(chunk []byte) bool {
		for len(chunk) >= 6 {
			if int16(binary.BigEndian.Uint16(chunk[4:6])) == apiKey {
				return true
			}
			size := int64(binary.BigEndian.Uint32(chunk[:4]))
			if size > int64(len(chunk)-4) {
				return false
			}
			chunk = chunk[4+size:]
		}
		return false
	}
}
