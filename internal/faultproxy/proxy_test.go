package faultproxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// echoServer answers every byte with the same byte and remembers what it
// received (what "the server applied") and how each connection ended.
type echoServer struct {
	ln net.Listener
	wg sync.WaitGroup

	mu       sync.Mutex
	received bytes.Buffer
	conns    []net.Conn
	endErrs  []error // how each finished connection ended (nil: EOF)
}

func startEcho(t *testing.T) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &echoServer{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					s.mu.Lock()
					s.received.Write(buf[:n])
					s.mu.Unlock()
					if n > 0 {
						if _, werr := c.Write(buf[:n]); werr != nil {
							err = werr
						}
					}
					if err != nil {
						if errors.Is(err, io.EOF) {
							err = nil
						}
						s.mu.Lock()
						s.endErrs = append(s.endErrs, err)
						s.mu.Unlock()
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *echoServer) got() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.received.String()
}

func (s *echoServer) ended() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.endErrs...)
}

func startProxy(t *testing.T, target string) *Proxy {
	t.Helper()
	p, err := New(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes msg and reads as many bytes back.
func roundTrip(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("writing %q: %v", msg, err)
	}
	expectAnswer(t, c, msg)
}

func expectAnswer(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("reading the answer to %q: %v", msg, err)
	}
	if string(got) != msg {
		t.Fatalf("answer %q, want %q", got, msg)
	}
}

// expectSilence asserts that nothing arrives on c for a while: what a
// client waiting on a black hole or a dropped answer sees.
func expectSilence(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read %q, %v; want nothing (a timeout)", buf[:n], err)
	}
}

func expectReset(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.ReadAll(c)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("reading after the fault: %v, want connection reset", err)
	}
}

// twoConnections opens two connections through a proxy to an echo server,
// each with one round trip ("a", "b") done.
func twoConnections(t *testing.T) (*echoServer, *Proxy, net.Conn, net.Conn) {
	t.Helper()
	echo := startEcho(t)
	p := startProxy(t, echo.ln.Addr().String())
	a, b := dial(t, p.Addr()), dial(t, p.Addr())
	roundTrip(t, a, "a")
	roundTrip(t, b, "b")
	return echo, p, a, b
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestPassForwardsBothWays(t *testing.T) {
	echo := startEcho(t)
	p := startProxy(t, echo.ln.Addr().String())
	c := dial(t, p.Addr())
	roundTrip(t, c, "hello")
	roundTrip(t, c, strings.Repeat("x", 100_000)) // several chunks
	// The up side counts its bytes once its write returns, which can be
	// after the echo is already back: wait for the count, not a moment.
	eventually(t, "100,005 bytes counted each way", func() bool {
		st := p.Stats()
		return st.BytesUp == 100_005 && st.BytesDown == 100_005
	})
	if st := p.Stats(); st.Accepted != 1 || st.Open != 1 {
		t.Fatalf("stats %+v", st)
	}
	// A client that closes ends the server's side cleanly too.
	c.Close()
	eventually(t, "the server's connection closed cleanly", func() bool { return len(echo.ended()) == 1 })
	if err := echo.ended()[0]; err != nil {
		t.Fatalf("server side ended with %v, want EOF", err)
	}
	eventually(t, "no open connection", func() bool { return p.Stats().Open == 0 })
}

func TestLatencyHoldsEveryChunk(t *testing.T) {
	echo := startEcho(t)
	p := startProxy(t, echo.ln.Addr().String())
	c := dial(t, p.Addr())
	const d = 150 * time.Millisecond
	p.Latency(d)
	start := time.Now()
	roundTrip(t, c, "slow")
	// Held once each way: the answer cannot be back sooner.
	if took := time.Since(start); took < 2*d {
		t.Fatalf("round trip took %v, want at least %v", took, 2*d)
	}
	p.Latency(0)
	roundTrip(t, c, "fast")
}

func TestResetAllResetsBothSides(t *testing.T) {
	echo, p, a, b := twoConnections(t)
	p.ResetAll()
	expectReset(t, a)
	expectReset(t, b)
	eventually(t, "the server's connections reset", func() bool {
		ends := echo.ended()
		return len(ends) == 2 && errors.Is(ends[0], syscall.ECONNRESET) && errors.Is(ends[1], syscall.ECONNRESET)
	})
	if st := p.Stats(); st.Resets != 2 {
		t.Fatalf("resets = %d, want 2", st.Resets)
	}
	// New connections go through.
	roundTrip(t, dial(t, p.Addr()), "again")
}

func TestBlackHoleHoldsUntilPass(t *testing.T) {
	echo := startEcho(t)
	p := startProxy(t, echo.ln.Addr().String())
	old := dial(t, p.Addr())
	roundTrip(t, old, "before")
	if err := p.BlackHole(); err != nil {
		t.Fatal(err)
	}
	if _, err := old.Write([]byte("held")); err != nil {
		t.Fatal(err)
	}
	expectSilence(t, old)
	// A new connection is accepted but reaches nothing.
	fresh := dial(t, p.Addr())
	if _, err := fresh.Write([]byte("new")); err != nil {
		t.Fatal(err)
	}
	expectSilence(t, fresh)
	if got := echo.got(); got != "before" {
		t.Fatalf("the server received %q during the black hole, want only %q", got, "before")
	}
	if err := p.Pass(); err != nil {
		t.Fatal(err)
	}
	// Nothing was lost: the held bytes flow.
	expectAnswer(t, old, "held")
	expectAnswer(t, fresh, "new")
}

func TestRefuseRefusesNewConnectionsKeepsOpenOnes(t *testing.T) {
	echo := startEcho(t)
	p := startProxy(t, echo.ln.Addr().String())
	old := dial(t, p.Addr())
	if err := p.Refuse(); err != nil {
		t.Fatal(err)
	}
	_, err := net.DialTimeout("tcp", p.Addr(), 5*time.Second)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dialling while refusing: %v, want connection refused", err)
	}
	roundTrip(t, old, "still here")
	if err := p.Pass(); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, dial(t, p.Addr()), "back")
}

func TestDropAnswersServerAppliesClientNeverHears(t *testing.T) {
	echo := startEcho(t)
	p := startProxy(t, echo.ln.Addr().String())
	c := dial(t, p.Addr())
	p.DropAnswers(int64(len("commit")), 0)
	if _, err := c.Write([]byte("commit")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the server to receive the request", func() bool { return echo.got() == "commit" })
	expectSilence(t, c)
	// The budget is spent: the next answer arrives.
	roundTrip(t, c, "next")
	if st := p.Stats(); st.DroppedBytes != 6 {
		t.Fatalf("dropped %d bytes, want 6", st.DroppedBytes)
	}

	// For a duration: everything is dropped until it passes.
	p.DropAnswers(0, 200*time.Millisecond)
	if _, err := c.Write([]byte("lost")); err != nil {
		t.Fatal(err)
	}
	expectSilence(t, c)
	eventually(t, "answers again after the duration", func() bool {
		if _, err := c.Write([]byte("?")); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		b := make([]byte, 1)
		n, _ := c.Read(b)
		return n == 1
	})
	if !strings.HasPrefix(echo.got(), "commitnextlost") {
		t.Fatalf("server received %q", echo.got())
	}
}

func TestDropAnswersAfterMatchOnlyThatConnection(t *testing.T) {
	echo := startEcho(t)
	p := startProxy(t, echo.ln.Addr().String())
	a, b := dial(t, p.Addr()), dial(t, p.Addr())
	p.DropAnswersAfter(Contains([]byte("COMMIT")), 0, 0)
	roundTrip(t, a, "select")
	if _, err := b.Write([]byte("COMMIT")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the server to receive the commit", func() bool { return strings.Contains(echo.got(), "COMMIT") })
	expectSilence(t, b)
	roundTrip(t, a, "other connection unaffected")
	if st := p.Stats(); st.Drops != 1 {
		t.Fatalf("drops = %d, want 1", st.Drops)
	}
}

func TestCutAfterResetsMidRequest(t *testing.T) {
	echo := startEcho(t)
	p := startProxy(t, echo.ln.Addr().String())
	quiet, c := dial(t, p.Addr()), dial(t, p.Addr())
	roundTrip(t, quiet, "q")
	p.CutAfter(Contains([]byte("COPY")), 10)
	// Chunks before the match do not count.
	roundTrip(t, c, "hello")
	if _, err := c.Write([]byte("COPY" + strings.Repeat("r", 1000))); err != nil {
		t.Fatal(err)
	}
	expectReset(t, c)
	eventually(t, "the server's side of the cut connection reset", func() bool {
		ends := echo.ended()
		return len(ends) == 1 && errors.Is(ends[0], syscall.ECONNRESET)
	})
	// Exactly k bytes of the request reached the server.
	if got, want := echo.got(), "qhelloCOPYrrrrrr"; got != want {
		t.Fatalf("the server received %q, want %q", got, want)
	}
	// It fired once; the other connection is untouched.
	roundTrip(t, quiet, "COPY again")
	if st := p.Stats(); st.Cuts != 1 || st.Resets != 1 {
		t.Fatalf("stats %+v, want one cut", st)
	}
}

func TestCloseStopsEveryGoroutine(t *testing.T) {
	echo := startEcho(t)
	before := runtime.NumGoroutine()
	p, err := New(echo.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	for range 3 {
		conns = append(conns, dial(t, p.Addr()))
	}
	roundTrip(t, conns[0], "x")
	if err := p.BlackHole(); err != nil {
		t.Fatal(err)
	}
	conns = append(conns, dial(t, p.Addr())) // held before its dial
	if _, err := conns[1].Write([]byte("held")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "4 connections", func() bool { return p.Stats().Accepted == 4 })
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for i, c := range conns {
		t.Logf("connection %d", i)
		expectReset(t, c)
	}
	if err := p.Pass(); err == nil {
		t.Fatal("Pass after Close succeeded")
	}
	eventually(t, "the proxy's goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

func TestListenBehindAdvertisesTheProxy(t *testing.T) {
	ln, p, err := ListenBehind("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	if ln.Addr().String() != p.Addr() || p.Target() == p.Addr() {
		t.Fatalf("listener reports %s, proxy listens on %s and forwards to %s", ln.Addr(), p.Addr(), p.Target())
	}
	// A server on the listener is reached through the proxy at the
	// address it advertises.
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c)
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	c := dial(t, ln.Addr().String())
	roundTrip(t, c, "through")
	// BytesUp is counted once the proxy's write returns, which can be
	// after the echo is back.
	eventually(t, "the connection's 7 bytes counted through the proxy", func() bool {
		st := p.Stats()
		return st.Accepted == 1 && st.BytesUp == 7
	})
}

func TestKafkaRequestMatchesTheAPIKeyOfAnyFrame(t *testing.T) {
	frame := func(key int16, body string) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(2+len(body)))
		b = binary.BigEndian.AppendUint16(b, uint16(key))
		return append(b, body...)
	}
	endTxn := KafkaRequest(26)
	for _, c := range []struct {
		name  string
		chunk []byte
		want  bool
	}{
		{"alone", frame(26, "x"), true},
		{"second frame", append(frame(0, "produce"), frame(26, "")...), true},
		{"other keys", append(frame(0, "produce"), frame(3, "metadata")...), false},
		{"key in a body", frame(0, "\x00\x1a\x00\x1a\x00\x1a"), false},
		{"truncated", frame(26, "abc")[:5], false},
	} {
		if got := endTxn(c.chunk); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestStrandKeepsClientsWaitingForeverNewConnectionsPass(t *testing.T) {
	echo, p, a, b := twoConnections(t)
	p.Strand()
	// The server's sides end cleanly: the server forgot the connections.
	eventually(t, "the server's sides closed", func() bool { return len(echo.ended()) == 2 })
	for i, err := range echo.ended() {
		if err != nil {
			t.Fatalf("server side %d ended with %v, want EOF", i, err)
		}
	}
	// The clients' sides stay open: writes, even large ones, succeed, and
	// nothing answers, neither data nor EOF nor RST.
	if _, err := a.Write([]byte(strings.Repeat("x", 1<<20))); err != nil {
		t.Fatalf("writing to a stranded connection: %v", err)
	}
	expectSilence(t, a)
	if _, err := b.Write([]byte("hello?")); err != nil {
		t.Fatal(err)
	}
	expectSilence(t, b)
	// New connections pass, and Pass does not revive the stranded ones.
	roundTrip(t, dial(t, p.Addr()), "fresh")
	if err := p.Pass(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write([]byte("still there?")); err != nil {
		t.Fatal(err)
	}
	expectSilence(t, a)
	if got := echo.got(); got != "abfresh" {
		t.Fatalf("the server received %q, want %q", got, "abfresh")
	}
	if st := p.Stats(); st.Stranded != 2 || st.Open != 3 || st.Resets != 0 {
		t.Fatalf("stats %+v, want 2 stranded of 3 open, no reset", st)
	}
	// A client that gives up closes its side; the proxy forgets it.
	a.Close()
	eventually(t, "the closed stranded connection forgotten", func() bool { return p.Stats().Open == 2 })
}

func TestStrandHoldsAConnectionNotYetDialled(t *testing.T) {
	echo := startEcho(t)
	p := startProxy(t, echo.ln.Addr().String())
	if err := p.BlackHole(); err != nil {
		t.Fatal(err)
	}
	c := dial(t, p.Addr()) // accepted, held before its dial
	if _, err := c.Write([]byte("early")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the connection accepted", func() bool { return p.Stats().Open == 1 })
	p.Strand()
	if err := p.Pass(); err != nil {
		t.Fatal(err)
	}
	expectSilence(t, c)
	roundTrip(t, dial(t, p.Addr()), "fresh")
	if got := echo.got(); got != "fresh" {
		t.Fatalf("the server received %q, want only %q", got, "fresh")
	}
	echo.mu.Lock()
	defer echo.mu.Unlock()
	if len(echo.conns) != 1 {
		t.Fatalf("the server saw %d connections, want only the fresh one", len(echo.conns))
	}
}
