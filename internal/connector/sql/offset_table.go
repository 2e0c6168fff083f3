package sql

import (
	"context"
	"fmt"

	"github.com/sluice-dev/sluice/internal/config"
)

// OffsetTable is one pipeline's rows of sluice_offsets, for `sluice
// offsets show|reset`: where an exactly-once pipeline resumes, read and
// changed while the pipeline is stopped.
type OffsetTable struct {
	db database
	bk *bookkeeping
}

// OpenOffsetTable connects to the sink's database (one attempt: a command
// line tool reports a database that is down instead of waiting) and
// creates sluice_offsets if the pipeline never ran.
func OpenOffsetTable(ctx context.Context, kind string, cfg config.SQLSink, pipeline string) (*OffsetTable, error) {
	t, err := parseTableName(cfg.TableName())
	if err != nil {
		return nil, err
	}
	var db database
	switch kind {
	case "postgres":
		db, err = newPostgres(cfg.DSN, 2, limitsOf(cfg))
	case "mysql":
		db, err = newMySQL(cfg.DSN, 2, limitsOf(cfg))
	case "sqlite":
		db, err = newSQLite(ctx, cfg.Path)
	default:
		return nil, fmt.Errorf("unknown SQL sink %q", kind)
	}
	if err != nil {
		return nil, err
	}
	if srv, ok := db.(server); ok {
		if err := srv.connect(ctx); err != nil {
			db.close()
			return nil, err
		}
	}
	o := &OffsetTable{db: db, bk: newBookkeeping(db.dialect(), t.schema, pipeline)}
	if err := o.bk.setup(ctx, db, t.String(), false); err != nil {
		db.close()
		return nil, fmt.Errorf("creating %s: %w", o.bk.offsets, err)
	}
	return o, nil
}

// Name is the table's name as the database spells it.
func (o *OffsetTable) Name() string { return o.bk.offsets }

// Load returns the next offset stored for each partition of topic that
// has one. A partition whose offsets are stored per slot (exactly-once
// with parallelism) resumes from the group's committed offset: it is
// left out.
func (o *OffsetTable) Load(ctx context.Context, topic string) (map[int32]int64, error) {
	offs, err := o.bk.loadOffsets(ctx, o.db, topic)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", o.bk.offsets, err)
	}
	bySlot, err := o.bk.slotPartitions(ctx, o.db, topic)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", o.bk.slotOffsets, err)
	}
	for p := range bySlot {
		delete(offs, p)
	}
	return offs, nil
}

// Save stores next as the offsets to resume from, in one transaction that
// locks the rows as the sink's writes do.
func (o *OffsetTable) Save(ctx context.Context, topic string, next map[int32]int64) error {
	if len(next) == 0 {
		return nil
	}
	tx, err := o.db.begin(ctx)
	if err != nil {
		return fmt.Errorf("saving offsets to %s: %w", o.bk.offsets, err)
	}
	defer tx.rollback(context.WithoutCancel(ctx))
	parts := make([]int32, 0, len(next))
	for p := range next {
		parts = append(parts, p)
	}
	if _, err := o.bk.lockOffsets(ctx, tx, topic, parts); err != nil {
		return fmt.Errorf("saving offsets to %s: %w", o.bk.offsets, err)
	}
	if err := o.bk.saveOffsets(ctx, tx, topic, next); err != nil {
		return fmt.Errorf("saving offsets to %s: %w", o.bk.offsets, err)
	}
	if err := o.bk.forgetSlots(ctx, tx, topic, parts); err != nil {
		return fmt.Errorf("saving offsets to %s: %w", o.bk.offsets, err)
	}
	if err := tx.commit(ctx); err != nil {
		return fmt.Errorf("saving offsets to %s: %w", o.bk.offsets, err)
	}
	return nil
}

// Close closes the connections.
func (o *OffsetTable) Close() { o.db.close() }
