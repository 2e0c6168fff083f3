package demo

import (
	"context"
	"database/sql"
	"fmt"
	"os"

	_ "modernc.org/sqlite" // the embedded database of the demo
)

// prepareShopDB creates the demo's SQLite database afresh: the staging
// table the pipeline writes to and the final tables its merge fills.
func prepareShopDB(ctx context.Context, path string) error {
	for _, suffix := range []string{"", "-wal", "-shm"} {
		_ = os.Remove(path + suffix)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		return fmt.Errorf("opening the demo database: %w", err)
	}
	defer db.Close()
	for _, stmt := range []string{
		`CREATE TABLE events_staging (id INTEGER, kind TEXT, user_id INTEGER, page TEXT, product TEXT,
		   amount REAL, occurred_at TEXT, _topic TEXT, _partition INTEGER, _offset INTEGER,
		   _sluice_batch INTEGER NOT NULL DEFAULT 0)`,
		`CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER, product TEXT, amount REAL, occurred_at TEXT)`,
		`CREATE TABLE page_views_per_page (page TEXT PRIMARY KEY, views INTEGER NOT NULL)`,
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("creating the demo tables: %w", err)
		}
	}
	return nil
}

// forgetOffsets deletes the Kafka offsets the exactly-once SQLite sink
// stored with its rows, when the broker they belong to is gone (the
// demo's broker lives in memory).
func forgetOffsets(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", path)
	if err != nil {
		return err
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'sluice_offsets'").Scan(&n); err != nil || n == 0 {
		return err
	}
	_, err = db.ExecContext(ctx, "DELETE FROM sluice_offsets")
	return err
}
