package bqemu

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// sqliteSchema is the on-disk layout. It is meant to be read by people
// too (`sluice demo` shows it): one row per BigQuery row, as a JSON object
// in column data, numbered by seq within its table.
const sqliteSchema = `
CREATE TABLE IF NOT EXISTS bq_datasets (
	project TEXT NOT NULL, dataset TEXT NOT NULL, meta TEXT NOT NULL,
	PRIMARY KEY (project, dataset));
CREATE TABLE IF NOT EXISTS bq_tables (
	project TEXT NOT NULL, dataset TEXT NOT NULL, table_id TEXT NOT NULL, meta TEXT NOT NULL,
	PRIMARY KEY (project, dataset, table_id));
CREATE TABLE IF NOT EXISTS bq_rows (
	project TEXT NOT NULL, dataset TEXT NOT NULL, table_id TEXT NOT NULL,
	seq INTEGER NOT NULL, data TEXT NOT NULL,
	PRIMARY KEY (project, dataset, table_id, seq));
`

// sqliteStore keeps everything in one SQLite file (modernc.org/sqlite, pure
// Go), so a demo's data survives a restart and can be inspected with any
// SQLite tool.
type sqliteStore struct {
	db *sql.DB
}

func openSQLite(ctx context.Context, path string) (*sqliteStore, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("opening sqlite %s: %w", path, err)
	}
	// One writer at a time is SQLite's model anyway; a single connection
	// also keeps the pragmas above in force for every statement.
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, sqliteSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("creating emulator tables in %s: %w", path, err)
	}
	return &sqliteStore{db: db}, nil
}

func (s *sqliteStore) load(ctx context.Context) (map[datasetKey][]byte, map[tableKey][]byte, error) {
	datasets := make(map[datasetKey][]byte)
	rows, err := s.db.QueryContext(ctx, `SELECT project, dataset, meta FROM bq_datasets`)
	if err != nil {
		return nil, nil, fmt.Errorf("loading datasets: %w", err)
	}
	for rows.Next() {
		var k datasetKey
		var meta []byte
		if err := rows.Scan(&k.project, &k.dataset, &meta); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("loading datasets: %w", err)
		}
		datasets[k] = meta
	}
	if err := rows.Close(); err != nil {
		return nil, nil, fmt.Errorf("loading datasets: %w", err)
	}
	tables := make(map[tableKey][]byte)
	rows, err = s.db.QueryContext(ctx, `SELECT project, dataset, table_id, meta FROM bq_tables`)
	if err != nil {
		return nil, nil, fmt.Errorf("loading tables: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k tableKey
		var meta []byte
		if err := rows.Scan(&k.project, &k.dataset, &k.table, &meta); err != nil {
			return nil, nil, fmt.Errorf("loading tables: %w", err)
		}
		tables[k] = meta
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("loading tables: %w", err)
	}
	return datasets, tables, nil
}

func (s *sqliteStore) putDataset(ctx context.Context, k datasetKey, meta []byte) error {
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO bq_datasets (project, dataset, meta) VALUES (?, ?, ?)
		 ON CONFLICT (project, dataset) DO UPDATE SET meta = excluded.meta`,
		k.project, k.dataset, string(meta))
	if err != nil {
		return fmt.Errorf("saving dataset %s: %w", k, err)
	}
	return nil
}

func (s *sqliteStore) deleteDataset(ctx context.Context, k datasetKey) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM bq_datasets WHERE project = ? AND dataset = ?`, k.project, k.dataset); err != nil {
		return fmt.Errorf("deleting dataset %s: %w", k, err)
	}
	return nil
}

func (s *sqliteStore) putTable(ctx context.Context, k tableKey, meta []byte) error {
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO bq_tables (project, dataset, table_id, meta) VALUES (?, ?, ?, ?)
		 ON CONFLICT (project, dataset, table_id) DO UPDATE SET meta = excluded.meta`,
		k.project, k.dataset, k.table, string(meta))
	if err != nil {
		return fmt.Errorf("saving table %s: %w", k, err)
	}
	return nil
}

func (s *sqliteStore) deleteTable(ctx context.Context, k tableKey) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("deleting table %s: %w", k, err)
	}
	defer tx.Rollback()
	for _, q := range []string{
		`DELETE FROM bq_rows WHERE project = ? AND dataset = ? AND table_id = ?`,
		`DELETE FROM bq_tables WHERE project = ? AND dataset = ? AND table_id = ?`,
	} {
		if _, err := tx.ExecContext(ctx, q, k.project, k.dataset, k.table); err != nil {
			return fmt.Errorf("deleting table %s: %w", k, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("deleting table %s: %w", k, err)
	}
	return nil
}

func (s *sqliteStore) insertRows(ctx context.Context, k tableKey, first int64, rows [][]byte) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("inserting rows into %s: %w", k, err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO bq_rows (project, dataset, table_id, seq, data) VALUES (?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("inserting rows into %s: %w", k, err)
	}
	defer stmt.Close()
	for i, r := range rows {
		if _, err := stmt.ExecContext(ctx, k.project, k.dataset, k.table, first+int64(i), string(r)); err != nil {
			return fmt.Errorf("inserting rows into %s: %w", k, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("inserting rows into %s: %w", k, err)
	}
	return nil
}

func (s *sqliteStore) readRows(ctx context.Context, k tableKey, start int64, limit int) ([][]byte, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT data FROM bq_rows WHERE project = ? AND dataset = ? AND table_id = ? AND seq >= ?
		 ORDER BY seq LIMIT ?`, k.project, k.dataset, k.table, start, limit)
	if err != nil {
		return nil, fmt.Errorf("reading rows of %s: %w", k, err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			return nil, fmt.Errorf("reading rows of %s: %w", k, err)
		}
		out = append(out, data)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading rows of %s: %w", k, err)
	}
	return out, nil
}

func (s *sqliteStore) countRows(ctx context.Context, k tableKey) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx,
		`SELECT COUNT(*) FROM bq_rows WHERE project = ? AND dataset = ? AND table_id = ?`,
		k.project, k.dataset, k.table).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("counting rows of %s: %w", k, err)
	}
	return n, nil
}

func (s *sqliteStore) close() error { return s.db.Close() }
