-- The inputs of every assessment (without who the members are), kept so that it can be reproduced
-- and redone after a rule change.
CREATE TABLE households (
    household_id uuid PRIMARY KEY,
    programme    text        NOT NULL,
    region_code  text        NOT NULL,
    inputs       jsonb       NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE assessments (
    event_id     uuid PRIMARY KEY,  -- the eligibility.assessed event that announced it
    household_id uuid        NOT NULL REFERENCES households (household_id),
    cause_id     uuid        NOT NULL,
    rule_set     text        NOT NULL,
    score        real        NOT NULL,
    eligible     boolean     NOT NULL,
    components   text[]      NOT NULL,
    explanation  jsonb       NOT NULL,
    assessed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX assessments_household ON assessments (household_id, assessed_at);
