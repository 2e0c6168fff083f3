package devstack

import (
	"encoding/binary"
	"net"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-dev/sluice/internal/metrics"
)

// The embedded broker's own metrics are counted on its sockets: each
// accepted connection is wrapped, the Kafka frames going through it are
// followed, and the few that carry figures are decoded a second time
// (produce requests for bytes in, fetch responses for bytes out, metadata
// responses to learn topic IDs, which produce and fetch v13+ send instead
// of names). This keeps kfake untouched and adds no work to its request
// loop: kfake's Control hooks would run on that loop, and keep the last
// request of every connection they ever saw.
//
// kfake reads a request as a 4-byte size then the body, and writes each
// response with one Write of the whole frame; both are relied on below,
// and anything that does not parse (a TLS or SASL v0 stream) is counted
// as bytes only.

// listenerName is the listener label, as a Kafka broker's default one.
const listenerName = "PLAINTEXT"

// brokerCounters are one broker's metric children.
type brokerCounters struct {
	node                    string
	m                       *metrics.BrokerMetrics
	names                   *topicNames
	clients                 *clientIDs
	netIn, netOut, accepted prometheus.Counter
	open                    prometheus.Gauge
}

func newBrokerCounters(m *metrics.BrokerMetrics, node int, names *topicNames, clients *clientIDs) *brokerCounters {
	id := strconv.Itoa(node)
	return &brokerCounters{
		node: id, m: m, names: names, clients: clients,
		netIn:    m.NetworkIn.WithLabelValues(id, listenerName),
		netOut:   m.NetworkOut.WithLabelValues(id, listenerName),
		accepted: m.ConnectionsCreated.WithLabelValues(id, listenerName),
		open:     m.Connections.WithLabelValues(id, listenerName),
	}
}

// topicNames maps topic IDs to names, learnt from metadata responses of
// every broker.
type topicNames struct {
	mu sync.RWMutex
	m  map[[16]byte]string
}

func (t *topicNames) set(id [16]byte, name string) {
	t.mu.RLock()
	known := t.m[id] == name
	t.mu.RUnlock()
	if known {
		return
	}
	t.mu.Lock()
	t.m[id] = name
	t.mu.Unlock()
}

// name returns the topic's name; "" names a topic by ID only.
func (t *topicNames) name(name string, id [16]byte) string {
	if name != "" {
		return name
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	if n, ok := t.m[id]; ok {
		return n
	}
	return "unknown"
}

// clientIDs bounds the client_id label.
type clientIDs struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (c *clientIDs) label(id string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen[id] {
		return id
	}
	if len(c.seen) >= metrics.MaxClientIDs {
		return "other"
	}
	c.seen[id] = true
	return id
}

// countingListener wraps every accepted connection in a countingConn.
type countingListener struct {
	net.Listener
	b *brokerCounters
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.b.accepted.Inc()
	l.b.open.Inc()
	return &countingConn{Conn: c, b: l.b, pending: map[int32]pendingResponse{}}, nil
}

type pendingResponse struct{ key, version int16 }

// countingConn counts what goes through one client connection. Read is
// called by one goroutine at a time, and Write too, but not the same one:
// pending, filled by reads and drained by writes, has a lock.
type countingConn struct {
	net.Conn
	b      *brokerCounters
	frames frameReader
	closed atomic.Bool

	mu      sync.Mutex
	pending map[int32]pendingResponse
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.b.netIn.Add(float64(n))
		c.frames.feed(p[:n], c.request)
	}
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.b.netOut.Add(float64(n))
	}
	if n == len(p) && len(p) >= 8 && int(binary.BigEndian.Uint32(p)) == len(p)-4 {
		c.response(p)
	}
	return n, err
}

func (c *countingConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.b.open.Dec()
	}
	return c.Conn.Close()
}

// request counts one complete request frame (without its size prefix);
// frame may hold only the head of a request that is not a produce.
func (c *countingConn) request(frame []byte) bool {
	r := kbin.Reader{Src: frame}
	key, version, corr := r.Int16(), r.Int16(), r.Int32()
	clientID := r.NullableString()
	name := kmsg.NameForKey(key)
	if r.Complete() != nil || name == "" {
		return false
	}
	b := c.b
	b.m.Requests.WithLabelValues(b.node, name, strconv.Itoa(int(version))).Inc()
	cid := ""
	if clientID != nil {
		cid = *clientID
	}
	b.m.RequestsByClient.WithLabelValues(b.node, name, b.clients.label(cid)).Inc()
	switch key {
	case 0:
		c.produced(version, &r)
	case 1, 3:
		c.mu.Lock()
		c.pending[corr] = pendingResponse{key, version}
		c.mu.Unlock()
	}
	return true
}

func (c *countingConn) produced(version int16, r *kbin.Reader) {
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(version)
	if req.IsFlexible() {
		kmsg.SkipTags(r)
	}
	if req.ReadFrom(r.Src) != nil {
		return
	}
	for _, t := range req.Topics {
		n := 0
		for _, p := range t.Partitions {
			n += len(p.Records)
		}
		if n > 0 {
			c.b.m.BytesIn.WithLabelValues(c.b.node, c.b.names.name(t.Topic, t.TopicID)).Add(float64(n))
		}
	}
}

// response reads the figures out of a whole response frame.
func (c *countingConn) response(p []byte) {
	corr := int32(binary.BigEndian.Uint32(p[4:]))
	c.mu.Lock()
	pr, ok := c.pending[corr]
	delete(c.pending, corr)
	c.mu.Unlock()
	if !ok {
		return
	}
	var resp kmsg.Response
	switch pr.key {
	case 1:
		resp = kmsg.NewPtrFetchResponse()
	case 3:
		resp = kmsg.NewPtrMetadataResponse()
	default:
		return
	}
	resp.SetVersion(pr.version)
	body := p[8:]
	if resp.IsFlexible() {
		body = body[1:] // kfake writes an empty tagged-fields header
	}
	if resp.ReadFrom(body) != nil {
		return
	}
	switch resp := resp.(type) {
	case *kmsg.FetchResponse:
		for _, t := range resp.Topics {
			n := 0
			for _, p := range t.Partitions {
				n += len(p.RecordBatches)
			}
			if n > 0 {
				c.b.m.BytesOut.WithLabelValues(c.b.node, c.b.names.name(t.Topic, t.TopicID)).Add(float64(n))
			}
		}
	case *kmsg.MetadataResponse:
		for _, t := range resp.Topics {
			if t.Topic != nil && t.TopicID != [16]byte{} {
				c.b.names.set(t.TopicID, *t.Topic)
			}
		}
	}
}

// headKeep is how much of a request other than a produce is kept: its
// header, client id included.
const headKeep = 512

// frameReader follows the frames of a byte stream read in pieces of any
// size. It keeps the head of each frame, and the whole of a produce
// request, and calls done with it once the frame is complete; when done
// returns false the stream is not Kafka frames, and is no longer followed.
type frameReader struct {
	size     [4]byte
	sizeN    int
	total    int
	left     int
	buf      []byte
	whole    bool
	disabled bool
}

func (f *frameReader) feed(p []byte, done func([]byte) bool) {
	for len(p) > 0 && !f.disabled {
		if f.sizeN < 4 {
			n := copy(f.size[f.sizeN:], p)
			f.sizeN += n
			p = p[n:]
			if f.sizeN == 4 {
				f.left = int(binary.BigEndian.Uint32(f.size[:]))
				f.total = f.left
				f.buf, f.whole = f.buf[:0], false
				if f.left <= 0 {
					f.disabled = true
				}
			}
			continue
		}
		n := min(len(p), f.left)
		chunk := p[:n]
		p, f.left = p[n:], f.left-n
		keep := n
		if !f.whole {
			keep = min(n, max(0, headKeep-len(f.buf)))
		}
		f.buf = append(f.buf, chunk[:keep]...)
		if !f.whole && len(f.buf) >= 2 && binary.BigEndian.Uint16(f.buf) == 0 {
			f.whole = true // a produce request: its records are counted
			if cap(f.buf) < f.total {
				f.buf = append(make([]byte, 0, f.total), f.buf...)
			}
			f.buf = append(f.buf, chunk[keep:]...)
		}
		if f.left == 0 {
			if !done(f.buf) {
				f.disabled = true
			}
			f.sizeN = 0
			if cap(f.buf) > 16<<20 {
				f.buf = nil // a rare huge produce does not stay pinned per connection
			}
		}
	}
}
