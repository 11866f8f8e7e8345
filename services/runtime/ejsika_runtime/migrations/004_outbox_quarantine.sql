-- Outbox rows that Kafka will never take as they are (larger than the topic's max.message.bytes,
-- for a topic that does not exist, or not serialisable into a record). The relay moves them here
-- so that the rows behind them are published; an operator releases them back to the outbox once
-- the cause is fixed. Same columns as the outbox, plus why and when.
CREATE TABLE outbox_quarantine (
    id             bigint      PRIMARY KEY,  -- the row's id in the outbox
    topic          text        NOT NULL,
    key            bytea,
    value          bytea       NOT NULL,
    headers        json        NOT NULL,
    created_at     timestamptz NOT NULL,
    quarantined_at timestamptz NOT NULL DEFAULT now(),
    partition      integer,                  -- where it was to go; NULL for an unknown topic
    reason         text        NOT NULL,     -- a code: too_large, unknown_topic, invalid_topic, invalid_record, serialisation
    error          text        NOT NULL      -- the error as the broker or the client named it, never the payload
);
