package sql_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/sluice-dev/sluice/internal/connector"
	sqlsink "github.com/sluice-dev/sluice/internal/connector/sql"
)

// Two processes starting at once with create_table created the same table
// together, and PostgreSQL refused one: `duplicate key value violates
// unique constraint "pg_type_typname_nsp_index"`, logged and retried.
// Sluice's DDL (the table, new columns, the bookkeeping tables) is now
// serialised by a database advisory lock: two sinks creating, then
// widening, the same table at the same moment both succeed at once, round
// after round.
func TestSQLConcurrentCreateTableAndAddColumnsNeverCollide(t *testing.T) {
	for _, kind := range []string{"postgres", "mysql"} {
		t.Run(kind, func(t *testing.T) {
			d := openTestDB(t, kind)
			ctx := context.Background()
			for round := 0; round < 8; round++ {
				tbl, pipe := uniqueName("race"), uniqueName("p")
				d.dropAfter(t, pipe, tbl)
				cfg := d.cfg
				cfg.Table, cfg.CreateTable = tbl, true
				batches := [][]string{
					{`{"id":1,"name":"a"}`},
					{`{"id":2,"name":"b","price":2.5,"colour":"red"}`},
				}
				var sinks [2]connector.Sink
				var wg sync.WaitGroup
				errs := make(chan error, 2*(len(batches)+1))
				for i := range sinks {
					wg.Add(1)
					go func() {
						defer wg.Done()
						s, err := sqlsink.New(ctx, sqlsink.Options{Kind: d.kind, Config: cfg, Pipeline: pipe, ExactlyOnce: true, Logger: testLogger()})
						if err != nil {
							errs <- fmt.Errorf("sink %d starting: %w", i, err)
							return
						}
						sinks[i] = s
					}()
				}
				wg.Wait()
				for _, s := range sinks {
					if s != nil {
						t.Cleanup(func() { s.Close(context.Background()) })
					}
				}
				for b, values := range batches {
					for i, s := range sinks {
						if s == nil {
							continue
						}
						wg.Add(1)
						go func() {
							defer wg.Done()
							// Each sink its own partition, so the offsets do not overlap.
							if err := s.Write(ctx, records(t, "in", int32(i), int64(b), values...)); err != nil {
								errs <- fmt.Errorf("round %d, sink %d, batch %d: %w", round, i, b, err)
							}
						}()
					}
					wg.Wait()
				}
				close(errs)
				for err := range errs {
					t.Fatal(err)
				}
				if n := d.int(t, fmt.Sprintf("SELECT count(*) FROM %s WHERE colour = 'red'", tbl)); n != 2 {
					t.Fatalf("round %d: %d rows with the added column, want 2", round, n)
				}
			}
		})
	}
}
