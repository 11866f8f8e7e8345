-- Delivery (issue 10): webhook messages formed once, the pull feed, secret rotation, 410 Gone.
--
-- A row of `deliveries` is one notification: one matched event (or fact, or digest entry) for one
-- subscription. Its id is the one agencies answer to; `reference` is the agency's pseudonym of
-- the family (the payload never carries the internal household id).
ALTER TABLE deliveries ADD COLUMN event_type text;
ALTER TABLE deliveries ADD COLUMN reference text;
-- When what it tells happened (the event's time, the fact's day); sent as the item's `time`.
ALTER TABLE deliveries ADD COLUMN occurred_at timestamptz;
UPDATE deliveries d SET event_type = s.event_type FROM subscriptions s WHERE s.id = d.subscription_id;

-- How a subscription receives its notifications: POSTed to its URL, or read from GET /feed (for
-- agencies that cannot host an HTTPS endpoint). A feed subscription has no URL.
ALTER TABLE subscriptions ADD COLUMN channel text NOT NULL DEFAULT 'webhook' CHECK (channel IN ('webhook', 'feed'));
ALTER TABLE subscriptions ALTER COLUMN url DROP NOT NULL;
ALTER TABLE subscriptions ADD CONSTRAINT subscriptions_channel_url CHECK ((channel = 'webhook') = (url IS NOT NULL));
-- Why delivery stopped when the platform stopped it (e.g. the endpoint answered 410 Gone).
ALTER TABLE subscriptions ADD COLUMN disabled_reason text CHECK (length(disabled_reason) <= 200);
-- While a secret is rotated, the previous one keeps signing (beside the new) until it expires.
ALTER TABLE subscriptions ADD COLUMN previous_secret_encrypted bytea;
ALTER TABLE subscriptions ADD COLUMN previous_secret_until timestamptz;

-- A webhook message: a batch of one subscription's notifications. It is formed once: its members
-- and its id (the `webhook-id` header, msg_<id as hex>) stay the same on every retry and on a
-- redelivery, so that a receiver can deduplicate on webhook-id as Standard Webhooks asks.
CREATE TABLE webhook_messages (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    subscription_id uuid        NOT NULL REFERENCES subscriptions (id),
    status          text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    -- While a worker holds the message this is its lease: past it, another worker may take it.
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_status     integer,
    last_error      text CHECK (length(last_error) <= 200),
    size            integer     NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    delivered_at    timestamptz,
    seq             bigint GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX webhook_messages_due ON webhook_messages (subscription_id, next_attempt_at, seq) WHERE status = 'pending';
CREATE INDEX webhook_messages_recent ON webhook_messages (subscription_id, seq DESC);
CREATE INDEX webhook_messages_delivered_at ON webhook_messages (delivered_at) WHERE status = 'delivered';

ALTER TABLE deliveries ADD COLUMN message_id uuid REFERENCES webhook_messages (id);
CREATE INDEX deliveries_of_message ON deliveries (message_id) WHERE message_id IS NOT NULL;
CREATE INDEX deliveries_unformed ON deliveries (subscription_id, seq) WHERE status = 'pending' AND message_id IS NULL;

-- The pull feed. Positions are given per agency when a notification is first served (not when it
-- is queued: a transaction that queued earlier may commit later, and a position taken at queueing
-- could then fall behind a cursor already acknowledged). Serving is serialised per agency by its
-- feed_cursors row, so positions 1, 2, 3 … follow the order notifications became visible.
ALTER TABLE deliveries ADD COLUMN feed_position bigint;
CREATE INDEX deliveries_feed ON deliveries (subscription_id, feed_position) WHERE feed_position IS NOT NULL;
CREATE INDEX deliveries_feed_unserved ON deliveries (subscription_id, seq)
    WHERE status = 'pending' AND feed_position IS NULL;

-- Keyed by the agency claim of the caller's token (set by the identity provider), which may name
-- an agency not registered here yet: its feed is then empty, not an error.
CREATE TABLE feed_cursors (
    agency       text PRIMARY KEY,
    served       bigint NOT NULL DEFAULT 0,  -- the last position given
    acknowledged bigint NOT NULL DEFAULT 0   -- every position up to this one was acknowledged
);
