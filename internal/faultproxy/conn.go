package faultproxy

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// conn is one client connection and its upstream.
type conn struct {
	p      *Proxy
	client net.Conn
	server net.Conn // set by run before the pipes start

	gone     <-chan struct{} // closed when the connection ends (ctx.Done)
	end      context.CancelFunc
	ctx      context.Context // ends with the connection: cancels the dial
	goneOnce sync.Once

	// Guarded by p.mu.
	cutLeft  int64 // >= 0: bytes to forward before the cut; -1: none
	drop     dropper
	stranded bool // Strand: the client's bytes are swallowed, nothing answers
}

// dropper discards answer bytes while it is active: up to bytes (when >
// 0) and until until (when set).
type dropper struct {
	active bool
	bytes  int64
	until  time.Time
}

func newDropper(n int64, d time.Duration) dropper {
	dr := dropper{active: true, bytes: n}
	if d > 0 {
		dr.until = time.Now().Add(d)
	}
	return dr
}

// take returns how many of the next n answer bytes to drop.
func (dr *dropper) take(n int, now time.Time) int {
	if !dr.active {
		return 0
	}
	if !dr.until.IsZero() && now.After(dr.until) {
		dr.active = false
		return 0
	}
	if dr.bytes <= 0 {
		return n
	}
	k := int(min(int64(n), dr.bytes))
	dr.bytes -= int64(k)
	if dr.bytes == 0 {
		dr.active = false
	}
	return k
}

func (c *conn) run() {
	defer c.p.wg.Done()
	defer c.finish()
	// A black hole holds a new connection before it reaches the server.
	if !c.p.waitPassing(c.gone) {
		return
	}
	if c.isStranded() { // before it reached the server: never will
		c.swallow()
		return
	}
	dctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	server, err := (&net.Dialer{}).DialContext(dctx, "tcp", c.p.target)
	cancel()
	if err != nil {
		c.reset() // the client sees the server's refusal as a reset
		return
	}
	c.p.mu.Lock()
	c.server = server
	stranded := c.stranded
	c.p.mu.Unlock()
	if stranded { // while dialling: Strand did not see the server's side
		_ = server.Close()
		c.swallow()
		return
	}
	select {
	case <-c.gone: // reset while dialling
		resetConn(server)
		return
	default:
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); c.pipe(true) }()
	go func() { defer wg.Done(); c.pipe(false) }()
	wg.Wait()
}

// finish closes both sides (unless a reset did) and forgets the
// connection.
func (c *conn) finish() {
	c.goneOnce.Do(func() {
		c.end()
		_ = c.client.Close()
		c.p.mu.Lock()
		s := c.server
		c.p.mu.Unlock()
		if s != nil {
			_ = s.Close()
		}
	})
	c.p.mu.Lock()
	delete(c.p.conns, c)
	c.p.mu.Unlock()
}

// reset ends the connection with an RST on both sides.
func (c *conn) reset() {
	c.goneOnce.Do(func() {
		c.end()
		c.p.mu.Lock()
		c.p.stats.Resets++
		s := c.server
		c.p.mu.Unlock()
		resetConn(c.client)
		if s != nil {
			resetConn(s)
		}
	})
}

func (c *conn) isStranded() bool {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	return c.stranded
}

// swallow reads what a stranded client sends and discards it, until the
// client closes: the client sees its writes succeed and no answer, ever.
func (c *conn) swallow() {
	buf := make([]byte, 32<<10)
	for {
		if _, err := c.client.Read(buf); err != nil {
			return
		}
	}
}

// pipe forwards one direction until either side ends: up is client ->
// server. Once the connection is stranded, up swallows the client's bytes
// and down stops without telling the client anything.
func (c *conn) pipe(up bool) {
	src, dst := c.server, c.client
	if up {
		src, dst = c.client, c.server
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !c.p.waitPassing(c.gone) || !c.p.hold(c.gone) {
				return
			}
			if c.isStranded() {
				c.endPipe(up)
				return
			}
			chunk := buf[:n]
			cut := false
			if up {
				chunk, cut = c.upFaults(chunk)
			} else {
				chunk = c.downFaults(chunk)
			}
			if len(chunk) > 0 {
				if _, werr := dst.Write(chunk); werr != nil {
					c.endPipe(up)
					return
				}
				c.p.mu.Lock()
				if up {
					c.p.stats.BytesUp += int64(len(chunk))
				} else {
					c.p.stats.BytesDown += int64(len(chunk))
				}
				c.p.mu.Unlock()
			}
			if cut {
				c.reset()
				return
			}
		}
		if err != nil {
			if c.isStranded() {
				c.endPipe(up)
				return
			}
			if errors.Is(err, io.EOF) {
				// A clean end of one direction: pass it on, and let the
				// other direction finish what it is sending.
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
					return
				}
			}
			c.finish()
			return
		}
	}
}

// endPipe ends a direction that cannot forward: the whole connection
// after a read or write failed, unless it is stranded (Strand closed the
// server's side, which is what failed), in which case the client is kept
// waiting.
func (c *conn) endPipe(up bool) {
	if !c.isStranded() {
		c.finish()
		return
	}
	if up {
		c.swallow()
	}
}

// upFaults applies CutAfter and arms DropAnswersAfter for a client ->
// server chunk; it returns what to forward and whether to cut after it.
func (c *conn) upFaults(chunk []byte) ([]byte, bool) {
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if d := p.drop; d != nil && d.match(chunk) {
		// Before the request is forwarded, so its answer is caught.
		p.drop = nil
		p.stats.Drops++
		c.drop = newDropper(d.n, d.d)
	}
	if c.cutLeft < 0 {
		if a := p.cut; a != nil && (a.match == nil || a.match(chunk)) {
			p.cut = nil
			p.stats.Cuts++
			c.cutLeft = a.k
		}
	}
	if c.cutLeft < 0 {
		return chunk, false
	}
	k := int(min(int64(len(chunk)), c.cutLeft))
	c.cutLeft -= int64(k)
	return chunk[:k], c.cutLeft == 0
}

// downFaults drops what DropAnswers and DropAnswersAfter say from a
// server -> client chunk and returns the rest.
func (c *conn) downFaults(chunk []byte) []byte {
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	k := c.drop.take(len(chunk), now)
	if k < len(chunk) && p.dropAny {
		global := dropper{active: true, bytes: p.dropBytes, until: p.dropUntil}
		k += global.take(len(chunk)-k, now)
		p.dropAny, p.dropBytes = global.active, global.bytes
	}
	p.stats.DroppedBytes += int64(k)
	return chunk[k:]
}
