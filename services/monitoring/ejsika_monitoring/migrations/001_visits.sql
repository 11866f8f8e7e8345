-- Monitoring's own view of the households it follows (built from registry events).
CREATE TABLE households (
    household_id uuid PRIMARY KEY,
    programme    text        NOT NULL,
    region_code  text        NOT NULL,
    registered_at timestamptz NOT NULL
);

CREATE TABLE visits (
    visit_id     uuid PRIMARY KEY,
    household_id uuid        NOT NULL REFERENCES households (household_id),
    kind         text        NOT NULL,
    due_date     date        NOT NULL,
    done_at      timestamptz,
    scheduled_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX visits_open_by_due ON visits (due_date) WHERE done_at IS NULL;
