// Package file is a sink that writes records as JSON lines to a file or to
// stdout: one object per record with topic, partition, offset, timestamp,
// key, value and headers.
package file

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sluice-dev/sluice/internal/connector"
)

// Sink appends JSON lines. With sync on, a batch is acked only after fsync.
//
// A batch is written with one write call: either all its lines reach the
// file or, on an error, the file is cut back to where the batch started,
// so a retry never leaves a torn or doubled line behind. The sink assumes
// it is the file's only writer.
type Sink struct {
	mu   sync.Mutex
	f    *os.File // nil for stdout
	out  io.Writer
	sync bool
	buf  []byte
	size int64 // the file's size after the last batch: where a failed write is cut back to
}

// NewSink opens path for appending ("-" is stdout).
func NewSink(path string, sync bool) (*Sink, error) {
	if path == "-" {
		return &Sink{out: os.Stdout}, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening sink file: %w", err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("reading sink file size: %w", err)
	}
	return &Sink{f: f, out: f, sync: sync, size: info.Size()}, nil
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
// interleave. A record that cannot be encoded is rejected alone: the other
// lines are written and durable (a *connector.BatchError names it). A
// failed write leaves nothing of the batch in the file.
func (s *Sink) Write(ctx context.Context, batch []*connector.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var bad []*connector.RecordError
	buf := s.buf[:0]
	for _, r := range batch {
		b, err := appendLine(buf, r)
		if err != nil {
			bad = append(bad, &connector.RecordError{Record: r, Reason: "encode", Err: err})
			continue // b holds a partial line: drop it
		}
		buf = b
	}
	s.buf = buf
	if err := s.writeAll(buf); err != nil {
		return err
	}
	return connector.Rejected(bad)
}

// writeAll appends buf whole, or cuts the file back to its size before.
func (s *Sink) writeAll(buf []byte) error {
	if len(buf) == 0 {
		return nil
	}
	if s.f == nil {
		if _, err := s.out.Write(buf); err != nil {
			return fmt.Errorf("writing to stdout: %w", err)
		}
		return nil
	}
	_, err := s.f.Write(buf)
	if err == nil && s.sync {
		err = s.f.Sync()
	}
	if err != nil {
		if terr := s.f.Truncate(s.size); terr != nil {
			return fmt.Errorf("writing sink file: %w (and cutting back the partial batch: %v)", err, terr)
		}
		return fmt.Errorf("writing sink file: %w", err)
	}
	s.size += int64(len(buf))
	return nil
}

// appendLine writes one record as a JSON object by hand: encoding/json's
// reflection over a struct per record was most of this sink's CPU. Decoded
// fields still go through encoding/json.
func appendLine(dst []byte, r *connector.Record) ([]byte, error) {
	dst = append(dst, `{"topic":`...)
	dst = appendJSONString(dst, r.Topic)
	dst = append(dst, `,"partition":`...)
	dst = strconv.AppendInt(dst, int64(r.Partition), 10)
	dst = append(dst, `,"offset":`...)
	dst = strconv.AppendInt(dst, r.Offset, 10)
	dst = append(dst, `,"timestamp":"`...)
	dst = r.Timestamp.AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","key":`...)
	var keyEnc, valueEnc string
	var err error
	if dst, keyEnc, err = appendBytesValue(dst, r.Key, r.KeyFields, false); err != nil {
		return dst, err
	}
	dst = append(dst, `,"value":`...)
	switch {
	case r.Fields != nil:
		b, err := json.Marshal(r.Fields)
		if err != nil {
			return dst, fmt.Errorf("encoding record as JSON: %w", err)
		}
		dst = append(dst, b...)
	default:
		if dst, valueEnc, err = appendBytesValue(dst, r.Value, nil, true); err != nil {
			return dst, err
		}
	}
	if len(r.Headers) > 0 {
		dst = append(dst, `,"headers":{`...)
		for i, h := range r.Headers {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, h.Key)
			dst = append(dst, ':')
			dst = appendJSONString(dst, string(h.Value))
		}
		dst = append(dst, '}')
	}
	if keyEnc != "" {
		dst = append(dst, `,"key_encoding":"base64"`...)
	}
	if valueEnc != "" {
		dst = append(dst, `,"value_encoding":"base64"`...)
	}
	return append(dst, '}', '\n'), nil
}

// appendBytesValue writes decoded fields as JSON, bytes that are a JSON
// document as they are (allowJSON), UTF-8 text as a string, and anything
// else as base64 (reported in the returned encoding).
func appendBytesValue(dst, b []byte, decoded any, allowJSON bool) ([]byte, string, error) {
	switch {
	case decoded != nil:
		enc, err := json.Marshal(decoded)
		if err != nil {
			return dst, "", fmt.Errorf("encoding record as JSON: %w", err)
		}
		return append(dst, enc...), "", nil
	case b == nil:
		return append(dst, "null"...), "", nil
	case allowJSON && len(b) > 0 && json.Valid(b):
		return appendCompact(dst, b), "", nil
	case utf8.Valid(b):
		return appendJSONString(dst, string(b)), "", nil
	default:
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, b)
		return append(dst, '"'), "base64", nil
	}
}

// appendCompact appends a valid JSON document without its insignificant
// whitespace (a value spread over lines would break the one-line format).
func appendCompact(dst, b []byte) []byte {
	if bytes.IndexByte(b, '\n') < 0 && bytes.IndexByte(b, '\r') < 0 {
		return append(dst, b...)
	}
	var buf bytes.Buffer
	_ = json.Compact(&buf, b)
	return append(dst, buf.Bytes()...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string, escaping what JSON requires
// and replacing invalid UTF-8 with U+FFFD as encoding/json does.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// Close closes the file; every acked batch is already written.
func (s *Sink) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f != nil {
		return s.f.Close()
	}
	return nil
}
