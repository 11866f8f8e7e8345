-- Notifications of daily-digest subscriptions wait here, by the programme day (Asia/Jakarta) they
-- were matched, until the digest job queues a day's entries of a subscription together (one
-- batch, so one or few webhook messages). The key makes a redelivered event a no-op here too.
CREATE TABLE digest_entries (
    subscription_id uuid        NOT NULL REFERENCES subscriptions (id),
    event_id        uuid        NOT NULL,
    household_id    uuid        NOT NULL,
    reference       text        NOT NULL,
    event_type      text        NOT NULL,
    occurred_at     timestamptz,
    payload         json        NOT NULL,
    digest_day      date        NOT NULL,
    PRIMARY KEY (subscription_id, event_id)
);
CREATE INDEX digest_entries_day ON digest_entries (digest_day);
