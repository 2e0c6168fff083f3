package devstack

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pubsubconn "github.com/sluice-dev/sluice/internal/connector/pubsub"
)

// startPubSub serves Google's Pub/Sub emulator (pstest). It keeps
// topics, subscriptions and messages in memory only: for trying pipelines
// out, not for keeping data.
func (s *Stack) startPubSub() error {
	addr := net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.PubSubPort))
	if s.opts.PubSubPort != 0 {
		if err := CheckPort("the Pub/Sub emulator", addr, "--pubsub-port"); err != nil {
			return err
		}
	}
	srv := pstest.NewServerWithAddress(addr)
	s.PubSub, s.PubSubAddr = srv, srv.Addr
	s.endpoints = append(s.endpoints, Endpoint{Name: "Pub/Sub emulator", Addr: srv.Addr})
	s.closers = append(s.closers, func() { _ = srv.Close() })
	return nil
}

// PubSubSubscription is a subscription `sluice dev` creates at start.
type PubSubSubscription struct {
	Name  string // short name, e.g. alerts-sluice
	Topic string // short name of its topic, created when missing
}

// CreatePubSub creates topics and subscriptions in project on the
// emulator, so a pipeline that reads a subscription finds it when it
// starts (the emulator keeps nothing across restarts). Subscriptions are
// created with message ordering on, which a pipeline with
// key_from: ordering_key needs and others do not mind. What exists
// already is left as it is.
func (s *Stack) CreatePubSub(ctx context.Context, project string, topics []string, subs []PubSubSubscription) error {
	if len(topics) == 0 && len(subs) == 0 {
		return nil
	}
	opts, err := pubsubconn.ClientOptions(s.PubSubAddr, "", "")
	if err != nil {
		return err
	}
	c, err := pubsub.NewClient(ctx, project, opts...)
	if err != nil {
		return fmt.Errorf("connecting to the Pub/Sub emulator: %w", err)
	}
	defer c.Close()
	topicPath := func(t string) string { return fmt.Sprintf("projects/%s/topics/%s", project, t) }
	for _, sub := range subs {
		if !slices.Contains(topics, sub.Topic) {
			topics = append(topics, sub.Topic)
		}
	}
	for _, t := range topics {
		_, err := c.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topicPath(t)})
		if err != nil && status.Code(err) != codes.AlreadyExists {
			return fmt.Errorf("creating Pub/Sub topic %s: %w", topicPath(t), err)
		}
	}
	for _, sub := range subs {
		name := fmt.Sprintf("projects/%s/subscriptions/%s", project, sub.Name)
		_, err := c.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
			Name: name, Topic: topicPath(sub.Topic), EnableMessageOrdering: true, AckDeadlineSeconds: 30,
		})
		if err != nil && status.Code(err) != codes.AlreadyExists {
			return fmt.Errorf("creating Pub/Sub subscription %s: %w", name, err)
		}
	}
	return nil
}
