-- Events to publish, written in the same transaction as the state change that caused them.
CREATE TABLE outbox (
    id           bigserial PRIMARY KEY,
    topic        text        NOT NULL,
    key          bytea,
    value        bytea       NOT NULL,
    headers      jsonb       NOT NULL DEFAULT '[]',
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_published_at ON outbox (published_at) WHERE published_at IS NOT NULL;

-- Ids of the events this service has applied; written with the effect, so a redelivery is a no-op.
CREATE TABLE inbox (
    event_id   uuid PRIMARY KEY,
    topic      text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
