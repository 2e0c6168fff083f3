package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/codec"
	"github.com/sluice-dev/sluice/internal/connector"
)

// TestAvroSchemaEvolvedThreeTimesLandsInOneTable: one topic carries records
// of four schema versions (each adding a field, BACKWARD compatible); all
// of them land in one PostgreSQL table whose columns are the union of the
// fields, with NULL where a version lacks a field.
func TestAvroSchemaEvolvedThreeTimesLandsInOneTable(t *testing.T) {
	t.Run("table with every column", func(t *testing.T) { avroEvolution(t, false) })
	// create_table makes the table from the first record it sees and
	// add_columns (on with it) adds the fields of later versions, typed
	// from their Avro schema.
	t.Run("create_table and add_columns", func(t *testing.T) { avroEvolution(t, true) })
}

func avroEvolution(t *testing.T, create bool) {
	d := openSQL(t, "postgres")
	pipe := sqlName("evolve")
	table := sqlName("films_evolved")
	d.cleanupSQL(t, pipe, table)
	sinkOpts := "metadata: []"
	if create {
		sinkOpts = "create_table: true, metadata: []"
	} else {
		d.exec(t, fmt.Sprintf(`CREATE TABLE %s (id bigint NOT NULL, title text, rating double precision, year int, released date)`, table))
	}

	c := startBroker(t)
	brokers := c.ListenAddrs()
	regURL, _ := startRegistry(t, "127.0.0.1:0", "")
	createTopic(t, brokers, "films.evolving", 3)
	versions := []string{
		`{"type":"record","name":"Film","namespace":"demo","fields":[{"name":"id","type":"long"},{"name":"title","type":"string"}]}`,
		`{"type":"record","name":"Film","namespace":"demo","fields":[{"name":"id","type":"long"},{"name":"title","type":"string"},
		  {"name":"rating","type":["null","double"],"default":null}]}`,
		`{"type":"record","name":"Film","namespace":"demo","fields":[{"name":"id","type":"long"},{"name":"title","type":"string"},
		  {"name":"rating","type":["null","double"],"default":null},{"name":"year","type":["null","int"],"default":null}]}`,
		`{"type":"record","name":"Film","namespace":"demo","fields":[{"name":"id","type":"long"},{"name":"title","type":"string"},
		  {"name":"rating","type":["null","double"],"default":null},{"name":"year","type":["null","int"],"default":null},
		  {"name":"released","type":["null",{"type":"int","logicalType":"date"}],"default":null}]}`,
	}
	reg, err := codec.NewRegistry(codec.RegistryOptions{URL: regURL})
	if err != nil {
		t.Fatal(err)
	}
	var values [][]byte
	for v, schema := range versions {
		enc, err := codec.NewAvroConfluentEncoder(reg, schema, codec.SubjectTopic, true)
		if err != nil {
			t.Fatalf("version %d: %v", v+1, err)
		}
		for i := v * 100; i < (v+1)*100; i++ {
			f := map[string]any{"id": int64(i), "title": fmt.Sprintf("film %d", i), "rating": float64(i % 10), "year": int32(1950 + i%70),
				"released": time.Date(2000+i%20, 1, 1, 0, 0, 0, 0, time.UTC)}
			b, err := enc.Encode(context.Background(), "films.evolving", &connector.Record{Fields: f})
			if err != nil {
				t.Fatal(err)
			}
			values = append(values, b)
		}
	}
	produceValues(t, brokers, "films.evolving", values)
	b, stop := runPipeline(t, fmt.Sprintf(`
name: %s
source: {kafka: {brokers: [%s], topics: [films.evolving], group: %s}}
format: {value: avro-confluent, schema_registry: {url: %s}}
on_error: fail
sink:
  postgres: {dsn: "%s", table: %s, %s}
`, pipe, brokers[0], pipe, regURL, sqlPostgresDSN(), table, sinkOpts))
	eventually(t, 60*time.Second, "400 rows", func() bool {
		n, _ := d.tryCount("SELECT count(*) FROM " + table) // created by the first write when create is set
		return n == 400
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	_ = b
	checks := map[string]int64{
		"SELECT count(*) FROM %s WHERE rating IS NULL":                                   100, // version 1
		"SELECT count(*) FROM %s WHERE year IS NULL":                                     200, // versions 1-2
		"SELECT count(*) FROM %s WHERE released IS NULL":                                 300, // versions 1-3
		"SELECT count(*) FROM %s WHERE released = make_date((2000 + id%%20)::int, 1, 1)": 100, // version 4, dates exact
		"SELECT count(*) FROM %s WHERE title = 'film ' || id":                            400,
	}
	if create {
		for col, typ := range map[string]string{"id": "bigint", "title": "text", "rating": "double precision", "year": "bigint", "released": "date"} {
			checks[fmt.Sprintf("SELECT count(*) FROM information_schema.columns WHERE table_name = '%%s' AND column_name = '%s' AND data_type = '%s'", col, typ)] = 1
		}
	}
	for q, want := range checks {
		if got := d.count(t, fmt.Sprintf(q, table)); got != want {
			t.Errorf("%s = %d, want %d", fmt.Sprintf(q, table), got, want)
		}
	}
}
