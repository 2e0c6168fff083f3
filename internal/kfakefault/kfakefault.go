// Package kfakefault builds the broker answers tests inject through
// kfake's ControlKey, so each fault is written once.
package kfakefault

import "github.com/twmb/franz-go/pkg/kmsg"

// RefuseProduce is the answer to req that refuses every partition of it
// with the error code (a kerr code, e.g. kerr.NotEnoughReplicas.Code).
func RefuseProduce(req *kmsg.ProduceRequest, code int16) *kmsg.ProduceResponse {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition, sp.ErrorCode = rp.Partition, code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
