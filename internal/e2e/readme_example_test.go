package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sluice-dev/sluice/internal/assembly"
	"github.com/sluice-dev/sluice/internal/config"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestREADMEPostgresExample runs the README's example exactly as shipped
// (examples/postgres/films.sql and films.yaml) so the docs cannot rot.
func TestREADMEPostgresExample(t *testing.T) {
	dsn := "postgres://postgres@127.0.0.1:5432/test"
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Skipf("PostgreSQL is not reachable at %s: %v (scripts/test starts it)", dsn, err)
	}
	defer conn.Close(ctx)
	_, self, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(self), "..", "..", "examples", "postgres")
	ddl, err := os.ReadFile(filepath.Join(dir, "films.sql"))
	if err != nil {
		t.Fatal(err)
	}
	// The example uses fixed names; this test owns them.
	for _, stmt := range []string{"DROP TABLE IF EXISTS films, films_staging", "DELETE FROM sluice_offsets WHERE pipeline = 'films'"} {
		_, _ = conn.Exec(ctx, stmt)
	}
	if _, err := conn.Exec(ctx, string(ddl)); err != nil {
		t.Fatalf("films.sql: %v", err)
	}

	c := startBroker(t)
	brokers := c.ListenAddrs()
	createTopic(t, brokers, "films", 3)
	t.Setenv("KAFKA_BROKERS", brokers[0])
	t.Setenv("FILMS_DSN", dsn)
	f, err := config.LoadFile(filepath.Join(dir, "films.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// 250 films, each sent twice (an update): 500 records, merged every 100.
	// Keyed by film id, as a producer of film updates would: the two
	// versions of a film share a partition, so offsets order them.
	var recs []*kgo.Record
	for round := 0; round < 2; round++ {
		for i := 0; i < 250; i++ {
			recs = append(recs, &kgo.Record{Topic: "films", Key: []byte(fmt.Sprint(i)),
				Value: []byte(fmt.Sprintf(`{"id":%d,"title":"Film %d","year":%d,"rating":%d.%d}`, i, i, 1950+i%70, round+5, i%10))})
		}
	}
	pcl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	if err := pcl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	pcl.Close()
	b, err := assembly.Build(ctx, f.Pipelines[0], testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- b.Pipeline.Run(runCtx) }()
	var films, staged int
	eventually(t, 60*time.Second, "every film merged with its latest rating", func() bool {
		_ = conn.QueryRow(ctx, "SELECT count(*) FROM films WHERE rating >= 6").Scan(&films)
		_ = conn.QueryRow(ctx, "SELECT count(*) FROM films_staging").Scan(&staged)
		return films == 250 && staged == 0
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var total int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM films").Scan(&total); err != nil || total != 250 {
		t.Fatalf("films holds %d rows (%v), want 250", total, err)
	}
	readme, _ := os.ReadFile(filepath.Join(dir, "..", "..", "README.md"))
	if !strings.Contains(string(readme), "examples/postgres/films.sql") {
		t.Fatal("README no longer points at the example this test runs")
	}
}
