package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// shellWords splits a command line as sh would for the commands the docs
// print: words separated by blanks, '...' and "..." quoting, a backslash
// before a newline continuing the line, and # starting a comment.
func shellWords(line string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\\' && i+1 < len(line) && line[i+1] == '\n':
			i++
		case c == '\\' && i+1 < len(line):
			cur.WriteByte(line[i+1])
			inWord = true
			i++
		case c == '\'' || c == '"':
			end := strings.IndexByte(line[i+1:], c)
			if end < 0 {
				return nil, fmt.Errorf("unterminated %c in %q", c, line)
			}
			cur.WriteString(line[i+1 : i+1+end])
			inWord = true
			i += end + 1
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '#' && !inWord:
			for i < len(line) && line[i] != '\n' {
				i++
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

func TestShellWords(t *testing.T) {
	got, err := shellWords(`sluice pubsub publish alerts --ordering-key s-7 '{"a": 1}' \` + "\n" + `  --x "y z"   # a comment`)
	want := []string{"sluice", "pubsub", "publish", "alerts", "--ordering-key", "s-7", `{"a": 1}`, "--x", "y z"}
	if err != nil || strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("shellWords = %q, %v; want %q", got, err, want)
	}
}

// syncBuffer is a bytes.Buffer safe to read while a command writes it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// background is a long-running command (sluice dev, sluice run) started
// in this process; it stops when the test ends, as on Ctrl-C.
type background struct {
	out  syncBuffer
	done chan error
}

// startCLI runs the root command with args until the test ends; a
// command that returns early reports its error through done.
func startCLI(t *testing.T, args ...string) *background {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b := &background{done: make(chan error, 1)}
	root := newRootCommand()
	root.SetOut(&b.out)
	root.SetErr(&b.out)
	root.SetArgs(args)
	go func() { b.done <- root.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-b.done:
			if err != nil {
				t.Logf("sluice %s: %v", strings.Join(args, " "), err)
			}
		case <-time.After(60 * time.Second):
			t.Errorf("sluice %s did not stop within 60 s of its context", strings.Join(args, " "))
		}
	})
	return b
}

// waitOutput waits for want in a background command's output, failing
// early if the command exits.
func (b *background) waitOutput(t *testing.T, d time.Duration, want string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(b.out.String(), want) {
		select {
		case err := <-b.done:
			b.done <- err
			t.Fatalf("command exited (%v) before printing %q:\n%s", err, want, b.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q within %s:\n%s", want, d, b.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freePort returns a port free at the time of the call.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
