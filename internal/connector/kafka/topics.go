package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// topicNameProblem says why name cannot be a Kafka topic, or "" when it
// can: Kafka's own rule (kafka.common.internals.Topic), checked before
// producing so that a template rendering "orders eu" is the record's
// problem instead of a produce retried forever.
func topicNameProblem(name string) string {
	switch {
	case name == "":
		return "is empty"
	case name == "." || name == "..":
		return "cannot be '.' or '..'"
	case len(name) > 249:
		return fmt.Sprintf("is %d characters long; at most 249", len(name))
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Sprintf("contains %q; only letters, digits, '.', '_' and '-' are allowed", c)
		}
	}
	return ""
}

// errTopicMissing marks a topic that does not exist.
var errTopicMissing = errors.New("does not exist")

// topicErrors asks the brokers about topics and returns each one's
// problem: errTopicMissing for a topic that does not exist, nil for one
// that exists. With allowAuto the request asks for missing topics to be
// created, which brokers with auto.create.topics.enable (and `sluice dev
// --auto-create-topics`) do, as they would for a Java producer.
func topicErrors(ctx context.Context, cl *kgo.Client, topics []string, allowAuto bool) (map[string]error, error) {
	req := kmsg.NewPtrMetadataRequest()
	for _, topic := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
	}
	req.AllowAutoTopicCreation = allowAuto
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	out := make(map[string]error, len(topics))
	for _, topic := range topics {
		out[topic] = errTopicMissing
	}
	for _, t := range resp.Topics {
		if t.Topic == nil {
			continue
		}
		if _, asked := out[*t.Topic]; !asked {
			continue
		}
		err := kerr.ErrorForCode(t.ErrorCode)
		switch {
		case err == nil, errors.Is(err, kerr.LeaderNotAvailable):
			out[*t.Topic] = nil // exists, or is being created
		case errors.Is(err, kerr.UnknownTopicOrPartition):
		default:
			out[*t.Topic] = err
		}
	}
	return out, nil
}

// topicState is topicErrors for one topic.
func topicState(ctx context.Context, cl *kgo.Client, topic string, allowAuto bool) error {
	errs, err := topicErrors(ctx, cl, []string{topic}, allowAuto)
	if err != nil {
		return err
	}
	return errs[topic]
}

// ensureTopic makes sure topic exists before anything is produced to it:
// it creates it with create when set (tolerating a concurrent creator),
// and otherwise lets the brokers create it if they do so on demand. A
// topic that still does not exist is a Permanent error naming the topic,
// the brokers and the ways out.
func ensureTopic(ctx context.Context, cl *kgo.Client, brokers []string, topic string, create *config.CreateTopic) error {
	err := topicState(ctx, cl, topic, create == nil)
	if err == nil {
		return nil
	}
	if !errors.Is(err, errTopicMissing) {
		if errors.Is(err, kerr.TopicAuthorizationFailed) {
			return connector.Permanent(fmt.Errorf("topic %q on brokers %s: %w", topic, strings.Join(brokers, ","), err))
		}
		return fmt.Errorf("looking up topic %q on brokers %s: %w", topic, strings.Join(brokers, ","), err)
	}
	if create == nil {
		return connector.Permanent(fmt.Errorf("topic %q does not exist on brokers %s: create it (sluice topics create %s), "+
			"set sink.kafka.create_topic: {partitions: N, replication_factor: R}, or let the brokers create topics on demand "+
			"(auto.create.topics.enable; sluice dev --auto-create-topics)", topic, strings.Join(brokers, ","), topic))
	}
	partitions, replication := create.Partitions, create.ReplicationFactor
	if partitions == 0 {
		partitions = -1 // the broker's num.partitions
	}
	if replication == 0 {
		replication = -1 // the broker's default.replication.factor
	}
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, replication, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		err = fmt.Errorf("creating topic %q on brokers %s: %w", topic, strings.Join(brokers, ","), err)
		if errors.Is(err, kerr.TopicAuthorizationFailed) || errors.Is(err, kerr.ClusterAuthorizationFailed) ||
			errors.Is(err, kerr.InvalidTopicException) || errors.Is(err, kerr.InvalidReplicationFactor) || errors.Is(err, kerr.InvalidPartitions) {
			return connector.Permanent(err)
		}
		return err
	}
	return nil
}
