-- OPD agencies and the fields of an event each may see (dotted paths into the event's data).
CREATE TABLE agencies (
    code       text PRIMARY KEY,
    name       text        NOT NULL,
    profile    text[]      NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE subscriptions (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    agency        text        NOT NULL REFERENCES agencies (code),
    event_type    text        NOT NULL,
    region_prefix text        NOT NULL DEFAULT '' CHECK (region_prefix ~ '^[0-9]*$'),
    eligible_only boolean     NOT NULL DEFAULT false,
    url           text        NOT NULL,
    secret        text        NOT NULL,
    active        boolean     NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscriptions_active ON subscriptions (event_type) WHERE active;

-- One row per (subscription, event): the unique key makes a redelivered event a no-op.
CREATE TABLE deliveries (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    subscription_id uuid        NOT NULL REFERENCES subscriptions (id),
    event_id        uuid        NOT NULL,
    payload         jsonb       NOT NULL,
    status          text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    -- While a worker holds a batch this is its lease: past it, another worker may take the batch.
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text CHECK (length(last_error) <= 200),
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    UNIQUE (subscription_id, event_id)
);
CREATE INDEX deliveries_due ON deliveries (subscription_id, next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_next_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_recent ON deliveries (subscription_id, created_at DESC);
CREATE INDEX deliveries_delivered_at ON deliveries (delivered_at) WHERE status = 'delivered';

-- Wake the delivery workers when deliveries are queued (sent at commit, once per transaction).
CREATE FUNCTION notify_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA || '_deliveries', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER deliveries_queued AFTER INSERT ON deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION notify_deliveries();
