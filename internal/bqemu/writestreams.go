package bqemu

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const defaultStreamID = "_default"

// storageStatus builds a status carrying BigQuery's StorageError detail,
// which clients inspect to tell, e.g., a duplicate offset from a bad one.
func storageStatus(c codes.Code, sc storagepb.StorageError_StorageErrorCode, entity, msg string) *status.Status {
	st := status.New(c, msg)
	if sc == storagepb.StorageError_STORAGE_ERROR_CODE_UNSPECIFIED {
		return st
	}
	if d, err := st.WithDetails(&storagepb.StorageError{Code: sc, Entity: entity, ErrorMessage: msg}); err == nil {
		return d
	}
	return st
}

// parseTableName reads "projects/p/datasets/d/tables/t".
func parseTableName(name string) (tableKey, bool) {
	p := strings.Split(name, "/")
	if len(p) != 6 || p[0] != "projects" || p[2] != "datasets" || p[4] != "tables" || p[1] == "" || p[3] == "" || p[5] == "" {
		return tableKey{}, false
	}
	return tableKey{p[1], p[3], p[5]}, true
}

// parseStreamName reads "projects/p/datasets/d/tables/t/streams/id".
func parseStreamName(name string) (tableKey, string, bool) {
	i := strings.LastIndex(name, "/streams/")
	if i < 0 {
		return tableKey{}, "", false
	}
	k, ok := parseTableName(name[:i])
	id := name[i+len("/streams/"):]
	return k, id, ok && id != "" && !strings.Contains(id, "/")
}

func tableName(k tableKey) string {
	return "projects/" + k.project + "/datasets/" + k.dataset + "/tables/" + k.table
}

// writeStream is an explicit (created) stream: COMMITTED rows go straight
// to the table; PENDING rows wait for BatchCommitWriteStreams; BUFFERED rows
// wait for FlushRows. Uncommitted rows are kept in memory only.
type writeStream struct {
	name    string
	table   *tableState
	typ     storagepb.WriteStream_Type
	created time.Time

	mu         sync.Mutex
	count      int64    // rows appended, i.e. the next offset
	held       [][]byte // PENDING: all rows; BUFFERED: rows from offset flushed on
	flushed    int64    // BUFFERED: rows [0, flushed) are in the table
	finalized  bool
	commitTime time.Time
}

func (s *writeStream) resource(location string, full bool) *storagepb.WriteStream {
	s.mu.Lock()
	defer s.mu.Unlock()
	ws := &storagepb.WriteStream{
		Name: s.name, Type: s.typ, CreateTime: timestamppb.New(s.created),
		WriteMode: storagepb.WriteStream_INSERT, Location: location,
	}
	if !s.commitTime.IsZero() {
		ws.CommitTime = timestamppb.New(s.commitTime)
	}
	if full {
		fields, _ := s.table.schema()
		ws.TableSchema = toStorageSchema(fields)
	}
	return ws
}

// append adds validated rows at offset (nil: at the end) and returns the
// offset of the first one.
func (s *writeStream) append(ctx context.Context, cat *catalog, rows [][]byte, offset *int64) (int64, *status.Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finalized || !s.commitTime.IsZero() {
		return 0, storageStatus(codes.InvalidArgument, storagepb.StorageError_STREAM_FINALIZED, s.name, "Stream is finalized: "+s.name)
	}
	start := s.count
	if offset != nil && *offset != start {
		if *offset < start {
			return 0, storageStatus(codes.AlreadyExists, storagepb.StorageError_OFFSET_ALREADY_EXISTS, s.name,
				"The offset is within stream, expected offset "+itoa(start)+", received "+itoa(*offset))
		}
		return 0, storageStatus(codes.OutOfRange, storagepb.StorageError_OFFSET_OUT_OF_RANGE, s.name,
			"The offset is beyond stream, expected offset "+itoa(start)+", received "+itoa(*offset))
	}
	if s.typ == storagepb.WriteStream_COMMITTED {
		if err := cat.commitRows(ctx, s.table, rows); err != nil {
			return 0, status.Convert(grpcError(err))
		}
	} else {
		s.held = append(s.held, rows...)
	}
	s.count += int64(len(rows))
	return start, nil
}

// streamRegistry holds explicit streams by name. Streams are never
// forgotten (BigQuery garbage-collects them after days; a test run is
// shorter), but committed ones drop their rows.
type streamRegistry struct {
	mu sync.Mutex
	m  map[string]*writeStream
}

func (r *streamRegistry) create(t *tableState, typ storagepb.WriteStream_Type) *writeStream {
	var id [12]byte
	rand.Read(id[:])
	s := &writeStream{
		name:    tableName(t.key) + "/streams/" + hex.EncodeToString(id[:]),
		table:   t,
		typ:     typ,
		created: time.Now(),
	}
	r.mu.Lock()
	r.m[s.name] = s
	r.mu.Unlock()
	return s
}

func (r *streamRegistry) get(name string) *writeStream {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[name]
}

func streamNotFound(name string) *status.Status {
	return storageStatus(codes.NotFound, storagepb.StorageError_STREAM_NOT_FOUND, name, "Requested entity was not found. Entity: "+name)
}

func tableNotFound(k tableKey) *status.Status {
	return storageStatus(codes.NotFound, storagepb.StorageError_TABLE_NOT_FOUND, tableName(k), "Not found: Table "+k.String())
}

// grpcError maps an emulator error onto a gRPC status error.
func grpcError(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	ae := asAPIError(err)
	return status.Error(ae.code, ae.msg)
}

func itoa(n int64) string { return canonicalInt(n) }
