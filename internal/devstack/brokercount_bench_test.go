package devstack

import (
	"context"
	"encoding/binary"
	"net"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-dev/sluice/internal/metrics"
)

// BenchmarkBrokerCountingProduce measures what counting costs the
// embedded broker: produce throughput of 1 KiB records (acks=all, a
// consumer reading them back, so fetch responses are decoded too), with
// and without the counting listener.
//
//	go test ./internal/devstack/ -run '^$' -bench BrokerCounting -benchtime 100000x -count 3
func BenchmarkBrokerCountingProduce(b *testing.B) {
	for _, counting := range []bool{false, true} {
		name := "plain"
		if counting {
			name = "counting"
		}
		b.Run(name, func(b *testing.B) {
			listen := func(network, addr string) (net.Listener, error) { return net.Listen(network, addr) }
			if counting {
				m := metrics.NewBrokerMetrics()
				counters := newBrokerCounters(m, 0, &topicNames{m: map[[16]byte]string{}}, &clientIDs{seen: map[string]bool{}})
				listen = func(network, addr string) (net.Listener, error) {
					l, err := net.Listen(network, addr)
					if err != nil {
						return nil, err
					}
					return &countingListener{Listener: l, b: counters}, nil
				}
			}
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.ListenFn(listen), kfake.SeedTopics(6, "bench"))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("bench"),
				kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.MaxBufferedRecords(100000),
				kgo.ConsumeTopics("bench"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()
			value := make([]byte, 1024)
			ctx := context.Background()
			b.SetBytes(int64(len(value)))
			b.ResetTimer()
			for range b.N {
				cl.Produce(ctx, &kgo.Record{Value: value}, nil)
			}
			if err := cl.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			for read := 0; read < b.N; {
				read += cl.PollFetches(ctx).NumRecords()
			}
		})
	}
}

// BenchmarkCountingProduceRequest is the counting's own CPU cost for one
// produce request of 1,000 records of 1 KiB (one 1 MiB batch), read in
// 64 KiB pieces as from a socket: follow the frames, copy the request,
// decode it and count its topic. Per record it is this divided by 1,000.
func BenchmarkCountingProduceRequest(b *testing.B) {
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(9)
	req.Acks = -1
	req.TimeoutMillis = 30000
	topic := kmsg.NewProduceRequestTopic()
	topic.Topic = "bench"
	part := kmsg.NewProduceRequestTopicPartition()
	part.Records = make([]byte, 1000*1024+61)
	topic.Partitions = append(topic.Partitions, part)
	req.Topics = append(req.Topics, topic)
	formatter := kmsg.NewRequestFormatter(kmsg.FormatterClientID("bench"))
	frame := formatter.AppendRequest(nil, req, 1)

	m := metrics.NewBrokerMetrics()
	c := &countingConn{b: newBrokerCounters(m, 0, &topicNames{m: map[[16]byte]string{}}, &clientIDs{seen: map[string]bool{}}),
		pending: map[int32]pendingResponse{}}
	b.SetBytes(int64(len(frame)))
	b.ResetTimer()
	for range b.N {
		for p := frame; len(p) > 0; {
			n := min(len(p), 64<<10)
			c.frames.feed(p[:n], c.request)
			p = p[n:]
		}
	}
}

// BenchmarkCountingFetchResponse is the counting's CPU cost for one fetch
// response carrying 1 MiB of record batches: decode it and count its topic.
func BenchmarkCountingFetchResponse(b *testing.B) {
	resp := kmsg.NewPtrFetchResponse()
	resp.SetVersion(11)
	topic := kmsg.NewFetchResponseTopic()
	topic.Topic = "bench"
	part := kmsg.NewFetchResponseTopicPartition()
	part.RecordBatches = make([]byte, 1000*1024+61)
	topic.Partitions = append(topic.Partitions, part)
	resp.Topics = append(resp.Topics, topic)
	frame := resp.AppendTo(make([]byte, 8))
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
	binary.BigEndian.PutUint32(frame[4:], 7)

	m := metrics.NewBrokerMetrics()
	c := &countingConn{b: newBrokerCounters(m, 0, &topicNames{m: map[[16]byte]string{}}, &clientIDs{seen: map[string]bool{}}),
		pending: map[int32]pendingResponse{}}
	b.SetBytes(int64(len(frame)))
	b.ResetTimer()
	for range b.N {
		c.pending[7] = pendingResponse{key: 1, version: 11}
		c.response(frame)
	}
}
