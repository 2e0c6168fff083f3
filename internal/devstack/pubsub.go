package devstack

import (
	"net"
	"strconv"

	"cloud.google.com/go/pubsub/v2/pstest"
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
