package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/sluice-dev/sluice/internal/devstack"
	"github.com/spf13/cobra"
)

// pubSubSetup is what `sluice dev` creates on its Pub/Sub emulator at
// start, which keeps nothing across restarts: without it a pipeline file
// that reads a subscription stops at once on a fresh `sluice dev`.
type pubSubSetup struct {
	project string
	topics  []string
	subs    []string // SUBSCRIPTION:TOPIC
}

func (p *pubSubSetup) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&p.project, "pubsub-project", "demo", "project of the Pub/Sub topics and subscriptions created at start")
	cmd.Flags().StringArrayVar(&p.topics, "pubsub-topic", nil, "create this Pub/Sub topic at start (repeatable)")
	cmd.Flags().StringArrayVar(&p.subs, "pubsub-subscription", nil, "create subscription SUB to topic TOPIC at start, given as SUB:TOPIC, with message ordering on; the topic is created too (repeatable)")
}

// parse checks the flags before anything starts.
func (p *pubSubSetup) parse() ([]devstack.PubSubSubscription, error) {
	var out []devstack.PubSubSubscription
	for _, s := range p.subs {
		name, topic, ok := strings.Cut(s, ":")
		if !ok || name == "" || topic == "" || strings.Contains(s, "/") {
			return nil, fmt.Errorf("--pubsub-subscription %q: use SUBSCRIPTION:TOPIC, e.g. alerts-sluice:alerts", s)
		}
		out = append(out, devstack.PubSubSubscription{Name: name, Topic: topic})
	}
	for _, t := range p.topics {
		if t == "" || strings.ContainsAny(t, "/:") {
			return nil, fmt.Errorf("--pubsub-topic %q: give the topic's short name, e.g. alerts", t)
		}
	}
	return out, nil
}

// apply creates the topics and subscriptions and says what it created.
func (p *pubSubSetup) apply(ctx context.Context, w io.Writer, s *devstack.Stack, subs []devstack.PubSubSubscription) error {
	if err := s.CreatePubSub(ctx, p.project, p.topics, subs); err != nil {
		return err
	}
	for _, t := range p.topics {
		fmt.Fprintf(w, "Pub/Sub topic     projects/%s/topics/%s\n", p.project, t)
	}
	for _, sub := range subs {
		fmt.Fprintf(w, "Pub/Sub subscription projects/%s/subscriptions/%s (topic %s, ordered)\n", p.project, sub.Name, sub.Topic)
	}
	return nil
}
