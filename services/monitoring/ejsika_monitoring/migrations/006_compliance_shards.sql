-- Closing a period over a million households (issue 8, under 60 s): the household ids are split in
-- shards closed side by side, each in its own bounded batches and with its own progress; the period is
-- closed (compliance_periods.closed_at) once every shard is. compliance_periods.closed_through is no
-- longer read: a period half-closed before this migration is taken again from each shard's start, and
-- the households stored already are skipped (their results and events stay as they were).
CREATE TABLE compliance_period_shards (
    programme      text        NOT NULL,
    period_start   date        NOT NULL,
    shard          smallint    NOT NULL,
    closed_through uuid,
    closed_at      timestamptz,
    PRIMARY KEY (programme, period_start, shard)
);

-- The member results are written once and read whole (the API, corrections, escalations): json keeps
-- them as written, without the cost of jsonb's parsing on every insert of the close.
ALTER TABLE compliance_results ALTER COLUMN members TYPE json USING members::json;
