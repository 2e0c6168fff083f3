// Package file is a sink that writes records as JSON lines to a file or to
// stdout: one object per record with topic, partition, offset, timestamp,
// key, value and headers.
package file

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sluice-dev/sluice/internal/connector"
)

// Sink appends JSON lines. With sync on, a batch is acked only after fsync.
type Sink struct {
	mu   sync.Mutex
	f    *os.File // nil for stdout
	w    *bufio.Writer
	out  io.Writer
	sync bool
	buf  []byte
}

// NewSink opens path for appending ("-" is stdout).
func NewSink(path string, sync bool) (*Sink, error) {
	if path == "-" {
		return &Sink{w: bufio.NewWriterSize(os.Stdout, 256<<10), out: os.Stdout}, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening sink file: %w", err)
	}
	return &Sink{f: f, w: bufio.NewWriterSize(f, 256<<10), out: f, sync: sync}, nil
}

// Line is one record as written.
type Line struct {
	Topic     string            `json:"topic"`
	Partition int32             `json:"partition"`
	Offset    int64             `json:"offset"`
	Timestamp time.Time         `json:"timestamp"`
	Key       any               `json:"key"`
	Value     any               `json:"value"`
	Headers   map[string]string `json:"headers,omitempty"`
	// KeyEncoding and ValueEncoding are "base64" when those bytes are not
	// UTF-8 text (and not decoded).
	KeyEncoding   string `json:"key_encoding,omitempty"`
	ValueEncoding string `json:"value_encoding,omitempty"`
}

// Write appends batch; concurrent writers are serialised so lines never
// interleave.
func (s *Sink) Write(ctx context.Context, batch []*connector.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range batch {
		b, err := appendLine(s.buf[:0], r)
		if err != nil {
			return &connector.BatchError{Failed: []*connector.RecordError{{Record: r, Reason: "encode", Err: err}}}
		}
		s.buf = b
		if _, err := s.w.Write(b); err != nil {
			return fmt.Errorf("writing sink file: %w", err)
		}
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("flushing sink file: %w", err)
	}
	if s.sync && s.f != nil {
		if err := s.f.Sync(); err != nil {
			return fmt.Errorf("syncing sink file: %w", err)
		}
	}
	return nil
}

func appendLine(dst []byte, r *connector.Record) ([]byte, error) {
	l := Line{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp}
	l.Key, l.KeyEncoding = bytesValue(r.Key, r.KeyFields)
	if r.Fields != nil {
		l.Value = r.Fields
	} else if len(r.Value) > 0 && json.Valid(r.Value) {
		l.Value = json.RawMessage(r.Value)
	} else {
		l.Value, l.ValueEncoding = bytesValue(r.Value, nil)
	}
	if len(r.Headers) > 0 {
		l.Headers = make(map[string]string, len(r.Headers))
		for _, h := range r.Headers {
			l.Headers[h.Key] = string(h.Value)
		}
	}
	b, err := json.Marshal(l)
	if err != nil {
		return dst, fmt.Errorf("encoding record as JSON: %w", err)
	}
	dst = append(dst, b...)
	return append(dst, '\n'), nil
}

func bytesValue(b []byte, decoded any) (any, string) {
	switch {
	case decoded != nil:
		return decoded, ""
	case b == nil:
		return nil, ""
	case utf8.Valid(b):
		return string(b), ""
	default:
		return base64.StdEncoding.EncodeToString(b), "base64"
	}
}

// Close flushes and closes the file.
func (s *Sink) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.w.Flush()
	if s.f != nil {
		if cerr := s.f.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
