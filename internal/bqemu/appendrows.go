package bqemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// maxAppendBytes is BigQuery's limit on one AppendRows request.
const maxAppendBytes = 10 << 20

// answer is the outcome of one request, in request order.
type answer struct {
	resp    *storagepb.AppendRowsResponse
	readyAt time.Time // injected latency: not sent before
	end     error     // non-nil: end the stream with this status instead
}

// AppendRows serves one bidi stream. Requests are handled one at a time in
// arrival order, on this goroutine; answers are sent, in the same order,
// by a second goroutine, so that injected latency delays responses
// without stopping the stream from accepting more requests (the client
// pipelines up to its in-flight limit, as it does with BigQuery).
func (w *writeService) AppendRows(stream storagepb.BigQueryWrite_AppendRowsServer) error {
	e := w.e
	if q := e.faults.maxConnections(); !e.stats.streams.tryInc(int64(q)) {
		e.stats.rejectedStreams.Add(1)
		// Refused after the first request, as BigQuery can only tell the
		// project from its write stream: the client's first send succeeds
		// and the status reaches it as the answer (refusing earlier makes
		// that send fail with a bare EOF, by a race).
		if _, err := stream.Recv(); err != nil {
			return err
		}
		return status.Errorf(codes.ResourceExhausted,
			"Exceeds quota: concurrent connections (limit %d) for project; too many concurrent AppendRows connections", q)
	}
	defer e.stats.streams.dec()
	ctx := stream.Context()

	// Bounded like the client's default in-flight limit; when full, we stop
	// reading requests and gRPC flow control pushes back on the client.
	answers := make(chan answer, 1000)
	sendErr := make(chan error, 1)
	go func() { sendErr <- sendAnswers(ctx, stream, answers) }()

	conn := &appendConn{e: e, dests: make(map[string]*destination)}
	recvErr := func() error {
		for {
			req, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			a := conn.handle(ctx, req)
			select {
			case answers <- a:
			case <-ctx.Done():
				return ctx.Err()
			}
			if a.end != nil {
				return nil
			}
		}
	}()
	close(answers)
	// The sender ends once it has sent everything queued, or when ctx ends.
	if err := <-sendErr; err != nil {
		return err
	}
	return recvErr
}

func sendAnswers(ctx context.Context, stream storagepb.BigQueryWrite_AppendRowsServer, answers <-chan answer) error {
	var timer *time.Timer
	for a := range answers {
		if wait := time.Until(a.readyAt); wait > 0 {
			if timer == nil {
				timer = time.NewTimer(wait)
				defer timer.Stop()
			} else {
				timer.Reset(wait)
			}
			select {
			case <-timer.C:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if a.end != nil {
			return a.end
		}
		if err := stream.Send(a.resp); err != nil {
			return err
		}
	}
	return nil
}

// appendConn is the state of one AppendRows stream: requests name their
// destination only when it changes, and carry the writer schema only on
// the first request for a destination (or when it changes), so both are
// remembered here, per destination, for a multiplexed stream.
type appendConn struct {
	e       *Emulator
	current string // write stream of the previous request
	traceID string
	dests   map[string]*destination
}

type destination struct {
	decoder    *rowDecoder // for the writer schema and table schema version
	msgType    protoreflect.MessageType
	defaultMVI storagepb.AppendRowsRequest_MissingValueInterpretation
	seen       int64 // table schema version this stream was last told about
}

func (c *appendConn) handle(ctx context.Context, req *storagepb.AppendRowsRequest) answer {
	c.e.stats.appends.Add(1)
	name := req.GetWriteStream()
	if name == "" {
		name = c.current
	}
	inj := c.e.faults.next()
	readyAt := time.Now().Add(inj.latency)
	resp := &storagepb.AppendRowsResponse{WriteStream: name}
	st, injected := c.process(ctx, name, req, resp, inj.err)
	if st == nil {
		return answer{resp: resp, readyAt: readyAt}
	}
	c.e.stats.failedAppends.Add(1)
	if injected {
		c.e.stats.faultsInjected.Add(1)
		if inj.terminate {
			return answer{end: st.Err(), readyAt: readyAt}
		}
	}
	resp.Response = &storagepb.AppendRowsResponse_Error{Error: st.Proto()}
	return answer{resp: resp, readyAt: readyAt}
}

// process validates and writes one request, filling resp's result. A
// non-nil status fails the whole request: nothing of it is written. A
// fault to inject (fault non-nil) fails the request after its destination
// and writer schema have been taken, as a real server failure would, and
// before anything is written; injected then reports that it did.
func (c *appendConn) process(ctx context.Context, name string, req *storagepb.AppendRowsRequest, resp *storagepb.AppendRowsResponse, fault *status.Status) (st *status.Status, injected bool) {
	if name == "" {
		return status.New(codes.InvalidArgument, "write_stream must be set in the first request of a connection"), false
	}
	c.current = name
	if req.GetTraceId() != "" && req.GetTraceId() != c.traceID {
		c.traceID = req.GetTraceId()
		c.e.log.Debug("AppendRows stream", "trace_id", c.traceID, "write_stream", name)
	}
	k, id, ok := parseStreamName(name)
	if !ok {
		return status.Newf(codes.InvalidArgument, "Invalid stream name: %q", name), false
	}
	var explicit *writeStream
	if id != defaultStreamID {
		if explicit = c.e.streams.get(name); explicit == nil {
			return streamNotFound(name), false
		}
	}
	table, err := c.e.cat.table(k)
	if err != nil {
		return tableNotFound(k), false
	}

	d := c.dests[name]
	if d == nil {
		d = &destination{}
		c.dests[name] = d
	}
	if req.GetArrowRows() != nil {
		return status.New(codes.InvalidArgument, "bqemu: arrow rows are not supported; send proto rows"), false
	}
	data := req.GetProtoRows()
	if ws := data.GetWriterSchema(); ws != nil {
		mt, err := c.e.descs.compile(ws.GetProtoDescriptor())
		if err != nil {
			return status.Newf(codes.InvalidArgument, "Invalid proto schema: %v. Entity: %s", err, name), false
		}
		if mt != d.msgType { // a multiplexed stream resends the same schema often
			d.msgType, d.decoder = mt, nil
		}
		d.defaultMVI = req.GetDefaultMissingValueInterpretation()
	} else if mvi := req.GetDefaultMissingValueInterpretation(); mvi != storagepb.AppendRowsRequest_MISSING_VALUE_INTERPRETATION_UNSPECIFIED {
		d.defaultMVI = mvi
	}
	if d.msgType == nil {
		return status.Newf(codes.InvalidArgument, "Proto schema is required in the first request for stream %s", name), false
	}
	if fault != nil {
		return fault, true
	}
	if size := proto.Size(req); size > maxAppendBytes {
		return status.Newf(codes.InvalidArgument, "AppendRows request too large: %d limit %d", size, maxAppendBytes), false
	}
	if req.GetOffset() != nil && explicit == nil {
		return status.Newf(codes.InvalidArgument, "Offset is not supported on the _default stream: %s", name), false
	}

	fields, version := table.schema()
	if d.decoder == nil || d.decoder.version != version {
		plan, err := buildPlan(d.msgType.Descriptor(), fields, "")
		if err != nil {
			var se *schemaError
			if errors.As(err, &se) {
				return storageStatus(codes.InvalidArgument, se.code, name, se.msg+". Entity: "+name), false
			}
			return status.New(codes.InvalidArgument, err.Error()), false
		}
		d.decoder = &rowDecoder{msgType: d.msgType, plan: plan, version: version}
	}
	// Like BigQuery, tell a stream once about a schema change made while it
	// was open, if its writer schema does not cover the new columns yet.
	if d.seen != 0 && version > d.seen && len(d.decoder.plan.fields) < len(fields) {
		resp.UpdatedSchema = toStorageSchema(fields)
	}
	d.seen = version

	serialized := data.GetRows().GetSerializedRows()
	mv := missingValues{byColumn: req.GetMissingValueInterpretations(), fallback: d.defaultMVI}
	now := time.Now()
	rows := make([][]byte, 0, len(serialized))
	for i, raw := range serialized {
		row, err := d.decoder.decode(raw, mv, now)
		if err != nil {
			resp.RowErrors = append(resp.RowErrors, &storagepb.RowError{
				Index: int64(i), Code: storagepb.RowError_FIELDS_ERROR, Message: err.Error()})
			continue
		}
		rows = append(rows, row)
	}
	if n := len(resp.RowErrors); n > 0 {
		c.e.stats.rowErrors.Add(int64(n))
		return status.Newf(codes.InvalidArgument,
			"Errors found while processing rows. Please refer to the row_errors field for details. "+
				"The list may not be complete because of the size limitations. Entity: %s", name), false
	}

	result := &storagepb.AppendRowsResponse_AppendResult{}
	if explicit != nil {
		var off *int64
		if o := req.GetOffset(); o != nil {
			off = &o.Value
		}
		start, st := explicit.append(ctx, c.e.cat, rows, off)
		if st != nil {
			return st, false
		}
		result.Offset = wrapperspb.Int64(start)
	} else if err := c.e.cat.commitRows(ctx, table, rows); err != nil {
		return status.Convert(grpcError(fmt.Errorf("writing to %s: %w", k, err))), false
	}
	c.e.stats.addRows(k, len(rows))
	resp.Response = &storagepb.AppendRowsResponse_AppendResult_{AppendResult: result}
	return nil, false
}
