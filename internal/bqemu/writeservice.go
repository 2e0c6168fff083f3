package bqemu

import (
	"context"
	"slices"
	"time"

	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// writeService implements BigQuery's Storage Write API
// (google.cloud.bigquery.storage.v1.BigQueryWrite).
type writeService struct {
	storagepb.UnimplementedBigQueryWriteServer
	e *Emulator
}

// GetWriteStream describes a stream. As in BigQuery, the table schema is
// only included with view FULL; managedwriter asks with the BASIC view and
// uses only the location.
func (w *writeService) GetWriteStream(ctx context.Context, req *storagepb.GetWriteStreamRequest) (*storagepb.WriteStream, error) {
	full := req.GetView() == storagepb.WriteStreamView_FULL
	k, id, ok := parseStreamName(req.GetName())
	if !ok {
		return nil, status.Errorf(codes.InvalidArgument, "Invalid stream name: %q", req.GetName())
	}
	if id != defaultStreamID {
		s := w.e.streams.get(req.GetName())
		if s == nil {
			return nil, streamNotFound(req.GetName()).Err()
		}
		return s.resource(w.e.location, full), nil
	}
	t, err := w.e.cat.table(k)
	if err != nil {
		return nil, tableNotFound(k).Err()
	}
	t.mu.Lock()
	created := time.UnixMilli(t.meta.CreationTime)
	t.mu.Unlock()
	ws := &storagepb.WriteStream{
		Name: req.GetName(), Type: storagepb.WriteStream_COMMITTED,
		CreateTime: timestamppb.New(created), WriteMode: storagepb.WriteStream_INSERT,
		Location: w.e.location,
	}
	if full {
		fields, _ := t.schema()
		ws.TableSchema = toStorageSchema(fields)
	}
	return ws, nil
}

func (w *writeService) CreateWriteStream(ctx context.Context, req *storagepb.CreateWriteStreamRequest) (*storagepb.WriteStream, error) {
	k, ok := parseTableName(req.GetParent())
	if !ok {
		return nil, status.Errorf(codes.InvalidArgument, "Invalid table name: %q", req.GetParent())
	}
	typ := req.GetWriteStream().GetType()
	switch typ {
	case storagepb.WriteStream_COMMITTED, storagepb.WriteStream_PENDING, storagepb.WriteStream_BUFFERED:
	default:
		return nil, status.Errorf(codes.InvalidArgument, "Invalid write stream type: %v", typ)
	}
	t, err := w.e.cat.table(k)
	if err != nil {
		return nil, tableNotFound(k).Err()
	}
	return w.e.streams.create(t, typ).resource(w.e.location, true), nil
}

// FinalizeWriteStream closes a stream to appends and returns its row count.
func (w *writeService) FinalizeWriteStream(ctx context.Context, req *storagepb.FinalizeWriteStreamRequest) (*storagepb.FinalizeWriteStreamResponse, error) {
	if _, id, ok := parseStreamName(req.GetName()); ok && id == defaultStreamID {
		return nil, storageStatus(codes.InvalidArgument, storagepb.StorageError_INVALID_STREAM_TYPE, req.GetName(),
			"Cannot finalize the _default stream").Err()
	}
	s := w.e.streams.get(req.GetName())
	if s == nil {
		return nil, streamNotFound(req.GetName()).Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finalized = true
	return &storagepb.FinalizeWriteStreamResponse{RowCount: s.count}, nil
}

// BatchCommitWriteStreams makes the rows of finalized PENDING streams of
// one table visible, all streams or none: on any problem the response
// lists stream errors and has no commit time, as BigQuery's does.
func (w *writeService) BatchCommitWriteStreams(ctx context.Context, req *storagepb.BatchCommitWriteStreamsRequest) (*storagepb.BatchCommitWriteStreamsResponse, error) {
	k, ok := parseTableName(req.GetParent())
	if !ok {
		return nil, status.Errorf(codes.InvalidArgument, "Invalid table name: %q", req.GetParent())
	}
	t, err := w.e.cat.table(k)
	if err != nil {
		return nil, tableNotFound(k).Err()
	}
	if len(req.GetWriteStreams()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "write_streams must not be empty")
	}
	if st := w.e.faults.nextCommit(); st != nil {
		w.e.stats.faultsInjected.Add(1)
		return nil, st.Err()
	}
	// Sorted, so that concurrent commits lock streams in the same order.
	names := slices.Clone(req.GetWriteStreams())
	slices.Sort(names)
	names = slices.Compact(names)
	var streams []*writeStream
	var errs []*storagepb.StorageError
	for _, name := range names {
		s := w.e.streams.get(name)
		if s == nil {
			errs = append(errs, &storagepb.StorageError{Code: storagepb.StorageError_STREAM_NOT_FOUND, Entity: name, ErrorMessage: "Stream not found"})
			continue
		}
		s.mu.Lock() // held until the commit is decided; released below
		streams = append(streams, s)
		switch {
		case s.table != t:
			errs = append(errs, &storagepb.StorageError{Code: storagepb.StorageError_INVALID_STREAM_STATE, Entity: name, ErrorMessage: "Stream does not belong to " + req.GetParent()})
		case s.typ != storagepb.WriteStream_PENDING:
			errs = append(errs, &storagepb.StorageError{Code: storagepb.StorageError_INVALID_STREAM_TYPE, Entity: name, ErrorMessage: "Only PENDING streams can be committed"})
		case !s.commitTime.IsZero():
			errs = append(errs, &storagepb.StorageError{Code: storagepb.StorageError_STREAM_ALREADY_COMMITTED, Entity: name, ErrorMessage: "Stream is already committed"})
		case !s.finalized:
			errs = append(errs, &storagepb.StorageError{Code: storagepb.StorageError_INVALID_STREAM_STATE, Entity: name, ErrorMessage: "Stream is not finalized"})
		}
	}
	defer func() {
		for _, s := range streams {
			s.mu.Unlock()
		}
	}()
	if len(errs) > 0 {
		return &storagepb.BatchCommitWriteStreamsResponse{StreamErrors: errs}, nil
	}
	var rows [][]byte
	for _, s := range streams {
		rows = append(rows, s.held...)
	}
	if err := w.e.cat.commitRows(ctx, t, rows); err != nil {
		return nil, grpcError(err)
	}
	now := time.Now()
	for _, s := range streams {
		s.commitTime, s.held = now, nil
	}
	return &storagepb.BatchCommitWriteStreamsResponse{CommitTime: timestamppb.New(now)}, nil
}

// FlushRows makes the rows of a BUFFERED stream up to and including
// offset visible.
func (w *writeService) FlushRows(ctx context.Context, req *storagepb.FlushRowsRequest) (*storagepb.FlushRowsResponse, error) {
	s := w.e.streams.get(req.GetWriteStream())
	if s == nil {
		return nil, streamNotFound(req.GetWriteStream()).Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.typ != storagepb.WriteStream_BUFFERED {
		return nil, storageStatus(codes.InvalidArgument, storagepb.StorageError_INVALID_STREAM_TYPE, s.name,
			"FlushRows is only supported on BUFFERED streams").Err()
	}
	offset := req.GetOffset().GetValue()
	if offset < 0 || offset >= s.count {
		return nil, storageStatus(codes.OutOfRange, storagepb.StorageError_OFFSET_OUT_OF_RANGE, s.name,
			"The flush offset is beyond the end of the stream: "+itoa(offset)).Err()
	}
	if upto := offset + 1; upto > s.flushed {
		n := upto - s.flushed
		if err := w.e.cat.commitRows(ctx, s.table, s.held[:n]); err != nil {
			return nil, grpcError(err)
		}
		s.held, s.flushed = s.held[n:], upto
	}
	return &storagepb.FlushRowsResponse{Offset: offset}, nil
}
