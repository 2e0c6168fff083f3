package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/sluice-dev/sluice/internal/loadgen"
)

// rateStep is how much one + or - key changes the rate.
const rateStep = 1.25

// rateKey applies one key to the running load's rate: + raises it by a
// quarter, - lowers it by a fifth. It says what it did, or why not.
func rateKey(key byte, c *loadgen.RateControl) (string, bool) {
	if key != '+' && key != '-' {
		return "", false
	}
	cur, ok := c.Current()
	if !ok || cur <= 0 {
		return "the rate is unlimited or paused: give --rate to change it with + and -", true
	}
	next := cur * rateStep
	if key == '-' {
		next = cur / rateStep
	}
	if err := c.Set(next, string(key)+" key"); err != nil {
		return err.Error(), true
	}
	return fmt.Sprintf("rate now %.0f records/s", next), true
}

// watchRateKeys reads + and - from the terminal while a load test runs,
// in raw mode so that a key acts without Enter; Ctrl-C, which raw mode
// no longer turns into a signal, calls interrupt. It does nothing when
// there is no terminal. stop restores the terminal and ends the reader.
func watchRateKeys(c *loadgen.RateControl, interrupt func(), msgs io.Writer) (stop func()) {
	// Non-blocking, the terminal joins Go's poller, so read deadlines
	// work and stop can end the reader without a key press.
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR|syscall.O_NONBLOCK, 0)
	if err != nil {
		return func() {}
	}
	fd := int(tty.Fd())
	if !term.IsTerminal(fd) {
		tty.Close()
		return func() {}
	}
	old, err := term.MakeRaw(fd)
	if err != nil {
		tty.Close()
		return func() {}
	}
	fmt.Fprint(msgs, "press + or - to change the rate\r\n")
	done, stopping := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1)
		for {
			// A deadline lets stop end this reader without a key press.
			if err := tty.SetReadDeadline(time.Now().Add(200 * time.Millisecond)); err != nil {
				return // no deadlines: no keys, rather than a reader stop cannot end
			}
			n, err := tty.Read(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				select {
				case <-stopping:
					return
				default:
					continue
				}
			}
			if err != nil {
				return
			}
			if n == 1 && buf[0] == 3 { // Ctrl-C
				interrupt()
				continue
			}
			if msg, ok := rateKey(buf[0], c); ok {
				fmt.Fprintf(msgs, "\r\n%s\r\n", msg)
			}
		}
	}()
	return func() {
		close(stopping)
		<-done
		_ = term.Restore(fd, old)
		tty.Close()
	}
}
