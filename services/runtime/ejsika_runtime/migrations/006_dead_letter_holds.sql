-- The dead letters this service wrote for a topic and has not applied since (ejsika_runtime.holds).
-- While a key (a household) has one, the key's later events of that topic wait behind it as dead
-- letters of their own (reason parked_behind), so that a replay applies them in their order; a row
-- goes when its letter's replay is applied. A redelivered record that already has a row is not
-- dead-lettered twice. A row of a NULL key holds nothing back (an unkeyed record has no order).
CREATE TABLE dead_letter_holds (
    seq      bigserial   PRIMARY KEY,  -- the order the letters were written in
    topic    text        NOT NULL,
    key      bytea,
    letter   bytea       NOT NULL,     -- sha256 of the record's key and value: how a replay is recognised
    event_id uuid,                     -- NULL for a record that is not an event
    reason   text        NOT NULL,
    held_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (topic, letter)
);
CREATE INDEX dead_letter_holds_key ON dead_letter_holds (topic, key);
