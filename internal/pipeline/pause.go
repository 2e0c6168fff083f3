package pipeline

import (
	"context"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/internal/connector"
)

// Pause stops every consumer from reading; what was read is still written.
// It returns a function that undoes this one pause (pauses nest: an
// operator's pause and a merge's pause are independent). A pipeline
// paused while starting says starting until its consumers are open, then
// paused: it does not resume by itself.
func (p *Pipeline) Pause() (resume func()) {
	p.mu.Lock()
	p.pauses++
	first := p.pauses == 1
	if first {
		p.resumed = make(chan struct{})
		p.pauseGen++
		if p.state == StateRunning {
			p.setStateLocked(StatePaused)
		}
	}
	cs := p.consumerList()
	p.mu.Unlock()
	if first {
		for _, c := range cs {
			c.pause()
		}
		p.log.Info("pipeline paused")
	}
	var once sync.Once
	return func() { once.Do(p.resumeOne) }
}

func (p *Pipeline) resumeOne() {
	p.mu.Lock()
	p.pauses--
	last := p.pauses == 0
	if last {
		close(p.resumed)
		if p.state == StatePaused {
			p.setStateLocked(StateRunning)
		}
	}
	cs := p.consumerList()
	p.mu.Unlock()
	if last {
		for _, c := range cs {
			c.resume()
		}
		p.log.Info("pipeline resumed")
	}
}

// PauseOperator is the admin API's pause: idempotent.
func (p *Pipeline) PauseOperator() {
	p.mu.Lock()
	held := p.operatorResume != nil
	p.mu.Unlock()
	if held {
		return
	}
	resume := p.Pause()
	p.mu.Lock()
	if p.operatorResume != nil {
		p.mu.Unlock()
		resume()
		return
	}
	p.operatorResume = resume
	p.mu.Unlock()
}

// ResumeOperator undoes PauseOperator: idempotent.
func (p *Pipeline) ResumeOperator() {
	p.mu.Lock()
	resume := p.operatorResume
	p.operatorResume = nil
	p.mu.Unlock()
	if resume != nil {
		resume()
	}
}

// Paused reports whether any pause is held.
func (p *Pipeline) Paused() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pauses > 0
}

// PauseAndDrain implements connector.Controller: pause, then wait until
// every consumer has written and acked all it read.
func (p *Pipeline) PauseAndDrain(ctx context.Context) (func(), error) {
	resume := p.Pause()
	for {
		if p.drained() {
			return resume, nil
		}
		t := time.NewTimer(2 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			resume()
			return nil, ctx.Err()
		}
	}
}

// drained: every consumer is parked at the gate of the pause now held,
// with nothing in flight. A consumer still parked at the gate of a pause
// already resumed is about to wake and read: it does not count.
func (p *Pipeline) drained() bool {
	p.mu.Lock()
	cs := p.consumerList()
	pause := p.pauseGen
	held := p.pauses > 0
	p.mu.Unlock()
	if !held {
		return false
	}
	for _, c := range cs {
		if c.parked.Load() != pause {
			return false
		}
	}
	return true
}

func (p *Pipeline) consumerList() []*consumer {
	cs := make([]*consumer, 0, len(p.order))
	for _, id := range p.order {
		cs = append(cs, p.consumers[id])
	}
	return cs
}

// pauseGate returns, while a pause is held, the channel closed when it
// is resumed and the pause's number (pauseGen); nil when not paused.
func (p *Pipeline) pauseGate() (chan struct{}, uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pauses == 0 {
		return nil, 0
	}
	return p.resumed, p.pauseGen
}

var _ connector.Controller = (*Pipeline)(nil)
