-- The facts that decide who may act on a household (see ejsika_runtime.scopes).
CREATE TABLE household_scope (
    household_id  uuid PRIMARY KEY,
    programme     text NOT NULL,
    region_code   text NOT NULL,
    pendamping_id text
);
CREATE INDEX household_scope_pendamping ON household_scope (pendamping_id);

-- The record of processing (UU PDP 27/2022): every read and write of a family's personal data,
-- by whom, when, through which endpoint or event, and for which declared purpose.
CREATE TABLE processing_records (
    id             bigserial PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT now(),
    subject        text        NOT NULL,
    role           text        NOT NULL,
    client_id      text,
    action         text        NOT NULL CHECK (action IN ('read', 'write', 'share')),
    household_id   uuid        NOT NULL,
    fields         text[]      NOT NULL,
    channel        text        NOT NULL,
    purpose        text        NOT NULL,
    correlation_id uuid
);
CREATE INDEX processing_records_household ON processing_records (household_id, id);
