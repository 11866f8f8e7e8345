-- What the agencies (OPD) answered about each family (agency_services.py, from notifications'
-- agency.answered): which agency programmes a KPM benefits from, and every answer as its history.
-- Keyed by the event: the same answer delivered twice is one row. No reference to households: an
-- answer may arrive before the registry knows the family it is about (it is shown once it does).
CREATE TABLE agency_services (
    event_id        uuid PRIMARY KEY,
    household_id    uuid        NOT NULL,
    agency          text        NOT NULL,
    programme       text        NOT NULL,  -- the agency's programme, e.g. sma_smk_placement
    member_id       uuid,                  -- the member it is about, when the agency named one
    outcome         text        NOT NULL CHECK (outcome IN ('accepted', 'service_delivered', 'declined')),
    reason          text,
    notification_id uuid        NOT NULL,
    answered_at     timestamptz NOT NULL,  -- when the agency answered: the order of the history
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agency_services_household ON agency_services (household_id, answered_at);
