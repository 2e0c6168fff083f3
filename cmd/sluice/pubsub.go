package main

import (
	"bufio"
	"context"
	"fmt"
	"strings"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/spf13/cobra"

	pubsubconn "github.com/sluice-dev/sluice/internal/connector/pubsub"
)

// newPubSubCommand manages topics and subscriptions and publishes
// messages: on the dev stack's emulator by default, on Google's service
// with --emulator-host "".
func newPubSubCommand() *cobra.Command {
	var project, emulator, credentials string
	cmd := &cobra.Command{
		Use:   "pubsub",
		Short: "Create Pub/Sub topics and subscriptions, publish messages (emulator or Google)",
		Long: `Pubsub talks to the Pub/Sub emulator of "sluice dev" (127.0.0.1:8085, or
$PUBSUB_EMULATOR_HOST) or, with --emulator-host "", to Google's service
with application default credentials or --credentials-file.`,
		Example: `  sluice pubsub create-topic alerts
  sluice pubsub create-subscription alerts-sluice --topic alerts --ordering
  sluice pubsub publish alerts --ordering-key sensor-7 --attr severity=critical '{"temperature": 81}'`,
	}
	cmd.PersistentFlags().StringVar(&project, "project", envOr("SLUICE_PUBSUB_PROJECT", "demo"), "Google Cloud project (env SLUICE_PUBSUB_PROJECT)")
	cmd.PersistentFlags().StringVar(&emulator, "emulator-host", envOr("PUBSUB_EMULATOR_HOST", "127.0.0.1:8085"), `Pub/Sub emulator host:port (env PUBSUB_EMULATOR_HOST); "" for Google's service`)
	cmd.PersistentFlags().StringVar(&credentials, "credentials-file", "", "Google credentials JSON file (default: application default credentials)")
	// withClient runs fn with a client and a 30 s deadline.
	withClient := func(fn func(ctx context.Context, c *pubsub.Client) error) error {
		opts, err := pubsubconn.ClientOptions(emulator, credentials, "--credentials-file")
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pubsub.NewClient(ctx, project, opts...)
		if err != nil {
			return err
		}
		defer c.Close()
		return fn(ctx, c)
	}
	topicPath := func(t string) string {
		if strings.HasPrefix(t, "projects/") {
			return t
		}
		return fmt.Sprintf("projects/%s/topics/%s", project, t)
	}

	createTopic := &cobra.Command{
		Use:     "create-topic NAME",
		Short:   "Create a topic",
		Example: "  sluice pubsub create-topic alerts",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(func(ctx context.Context, c *pubsub.Client) error {
				t, err := c.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topicPath(args[0])})
				if err != nil {
					return fmt.Errorf("creating topic %s: %w", topicPath(args[0]), err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "created %s\n", t.GetName())
				return nil
			})
		},
	}

	var subTopic string
	var ordering bool
	var ackDeadline time.Duration
	createSub := &cobra.Command{
		Use:     "create-subscription NAME --topic TOPIC",
		Short:   "Create a pull subscription to a topic",
		Example: "  sluice pubsub create-subscription alerts-sluice --topic alerts --ordering --ack-deadline 30s",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if subTopic == "" {
				return fmt.Errorf("--topic is required")
			}
			name := args[0]
			if !strings.HasPrefix(name, "projects/") {
				name = fmt.Sprintf("projects/%s/subscriptions/%s", project, name)
			}
			return withClient(func(ctx context.Context, c *pubsub.Client) error {
				s, err := c.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
					Name: name, Topic: topicPath(subTopic), EnableMessageOrdering: ordering, AckDeadlineSeconds: int32(ackDeadline.Seconds()),
				})
				if err != nil {
					return fmt.Errorf("creating subscription %s: %w", name, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "created %s (topic %s, ordering %v)\n", s.GetName(), s.GetTopic(), s.GetEnableMessageOrdering())
				return nil
			})
		},
	}
	createSub.Flags().StringVar(&subTopic, "topic", "", "the topic to subscribe to")
	createSub.Flags().BoolVar(&ordering, "ordering", false, "deliver messages of one ordering key in order")
	createSub.Flags().DurationVar(&ackDeadline, "ack-deadline", 30*time.Second, "ack deadline (10s to 10m)")

	var key string
	var attrs []string
	publish := &cobra.Command{
		Use:   "publish TOPIC [MESSAGE...]",
		Short: "Publish messages (the arguments, or one per line of standard input)",
		Example: `  sluice pubsub publish alerts --attr severity=info hello world
  seq 1 1000 | sluice pubsub publish alerts --ordering-key counter`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			attributes := map[string]string{}
			for _, kv := range attrs {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return fmt.Errorf("--attr %q: use key=value", kv)
				}
				attributes[k] = v
			}
			messages := args[1:]
			if len(messages) == 0 {
				sc := bufio.NewScanner(cmd.InOrStdin())
				sc.Buffer(make([]byte, 0, 64<<10), 10<<20)
				for sc.Scan() {
					messages = append(messages, sc.Text())
				}
				if err := sc.Err(); err != nil {
					return err
				}
			}
			return withClient(func(ctx context.Context, c *pubsub.Client) error {
				p := c.Publisher(topicPath(args[0]))
				p.EnableMessageOrdering = key != ""
				defer p.Stop()
				results := make([]*pubsub.PublishResult, len(messages))
				for i, m := range messages {
					results[i] = p.Publish(ctx, &pubsub.Message{Data: []byte(m), Attributes: attributes, OrderingKey: key})
				}
				for _, r := range results {
					if _, err := r.Get(ctx); err != nil {
						return fmt.Errorf("publishing to %s: %w", topicPath(args[0]), err)
					}
				}
				fmt.Fprintf(cmd.OutOrStdout(), "published %d messages to %s\n", len(messages), topicPath(args[0]))
				return nil
			})
		},
	}
	publish.Flags().StringVar(&key, "ordering-key", "", "ordering key of every message")
	publish.Flags().StringArrayVar(&attrs, "attr", nil, "attribute key=value (repeatable)")
	cmd.AddCommand(createTopic, createSub, publish)
	return cmd
}
