package bqemu

import (
	"context"
	"net"
	"testing"
	"time"

	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestServeGRPCStopsOnContext(t *testing.T) {
	e, err := New(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var g errgroup.Group
	g.Go(func() error { return e.ServeGRPC(ctx, lis) })
	createTable(t, e, "d", "t", eventSchema()[:1])
	mw := writerClient(t, Addrs{GRPC: lis.Addr().String()})
	if _, err := mw.GetWriteStream(ctx, &storagepb.GetWriteStreamRequest{Name: "projects/p/datasets/d/tables/t/streams/_default"}); err != nil {
		t.Fatalf("GetWriteStream while serving: %v", err)
	}
	cancel()
	done := make(chan error, 1)
	go func() { done <- g.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ServeGRPC after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ServeGRPC did not stop on context cancel")
	}
}

func TestGetWriteStreamViews(t *testing.T) {
	e, addrs := startEmulator(t, Options{Location: "europe-west1"})
	table := createTable(t, e, "d", "t", eventSchema())
	mw := writerClient(t, addrs)
	ctx := context.Background()
	name := table + "/streams/_default"
	basic, err := mw.GetWriteStream(ctx, &storagepb.GetWriteStreamRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	if basic.GetTableSchema() != nil || basic.GetLocation() != "europe-west1" || basic.GetType() != storagepb.WriteStream_COMMITTED {
		t.Fatalf("BASIC view: %v", basic)
	}
	full, err := mw.GetWriteStream(ctx, &storagepb.GetWriteStreamRequest{Name: name, View: storagepb.WriteStreamView_FULL})
	if err != nil {
		t.Fatal(err)
	}
	fields := full.GetTableSchema().GetFields()
	if len(fields) != len(eventSchema()) || fields[0].GetType() != storagepb.TableFieldSchema_INT64 ||
		fields[0].GetMode() != storagepb.TableFieldSchema_REQUIRED || len(fields[7].GetFields()) != 2 {
		t.Fatalf("FULL view schema: %v", full.GetTableSchema())
	}
	_, err = mw.GetWriteStream(ctx, &storagepb.GetWriteStreamRequest{Name: "projects/p/datasets/d/tables/nope/streams/_default"})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("stream of a missing table: %v, want NotFound", err)
	}
}
