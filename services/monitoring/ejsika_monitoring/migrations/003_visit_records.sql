-- The visits pendamping record in their app, as uploaded (often offline, late, twice, out of order).
-- visit_id is the app's own id: a visit uploaded again conflicts here and is stored once.
-- Read by the schedule (captured_at closes what was due) and by the verification of commitments
-- (observations per household and captured_at): keep these column names.
CREATE TABLE visit_records (
    visit_id      uuid PRIMARY KEY,
    household_id  uuid        NOT NULL,
    pendamping_id text        NOT NULL,
    captured_at   timestamptz NOT NULL,  -- on the device: everything is ordered by it, not by arrival
    received_at   timestamptz NOT NULL DEFAULT now(),
    location      json,
    observations  json        NOT NULL,  -- ejsika_contracts Observations
    notes         text                   -- free text, may hold health data: stored, never published nor logged
);
CREATE INDEX visit_records_by_household ON visit_records (household_id, captured_at);
