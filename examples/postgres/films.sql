-- The tables and merge procedure of the README's Kafka -> PostgreSQL example.
-- psql -h 127.0.0.1 -U postgres -d test -f films.sql
CREATE TABLE IF NOT EXISTS films (
  id         bigint PRIMARY KEY,
  title      text NOT NULL,
  year       int,
  rating     numeric(3,1),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Sluice writes here with COPY. _sluice_batch is set by Sluice: the merge
-- takes the rows up to the batch it is handed (the high-water mark).
CREATE TABLE IF NOT EXISTS films_staging (
  id            bigint NOT NULL,
  title         text,
  year          int,
  rating        numeric(3,1),
  _topic        text,
  _partition    int,
  _offset       bigint,
  _sluice_batch bigint NOT NULL DEFAULT 0
);

-- Upserts the staged rows into films, keeping the last version of each id
-- (a film may be staged twice in one batch: DISTINCT ON picks the newest by
-- Kafka offset, since ON CONFLICT cannot touch one row twice; records keyed
-- by film id share a partition, so their offsets order them), then empties
-- what it merged.
CREATE OR REPLACE PROCEDURE merge_films(hwm bigint)
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO films (id, title, year, rating, updated_at)
  SELECT DISTINCT ON (id) id, title, year, rating, now()
  FROM films_staging
  WHERE _sluice_batch <= hwm
  ORDER BY id, _offset DESC
  ON CONFLICT (id) DO UPDATE
    SET title = excluded.title, year = excluded.year, rating = excluded.rating, updated_at = excluded.updated_at;
  DELETE FROM films_staging WHERE _sluice_batch <= hwm;
END $$;
