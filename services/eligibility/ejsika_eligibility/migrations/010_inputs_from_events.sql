-- Inputs kept current from events (issue 9). `households` stays the one projection the assessment
-- reads; `household_facts` holds what each topic said of a household, from which its inputs are
-- folded, so that the order in which the topics are read (live or in a replay) does not matter.
ALTER TABLE households
    ADD COLUMN version           int  NOT NULL DEFAULT 1,  -- the registry's household version (the order guard)
    ADD COLUMN enrolment_status  text CHECK (enrolment_status IN ('candidate', 'active', 'suspended', 'exited')),
    ADD COLUMN registered_on     date,
    ADD COLUMN next_review_on    date,  -- the earliest day its decision may change with time alone
    ADD COLUMN compliance        json;  -- the latest verification results, per member and commitment

CREATE INDEX households_next_review ON households (next_review_on);

CREATE TABLE household_facts (
    household_id uuid PRIMARY KEY,
    facts        json,  -- domain.inputs.Facts; NULL while nothing is known yet
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Every step of a household's enrolment, as the registry announced it (read by the figures).
CREATE TABLE enrolment_steps (
    event_id       uuid PRIMARY KEY,  -- the enrolment.changed event
    household_id   uuid NOT NULL,
    version        int  NOT NULL,
    programme      text NOT NULL,
    region_code    text NOT NULL,
    status         text NOT NULL CHECK (status IN ('candidate', 'active', 'suspended', 'exited')),
    previous_status text,
    exit_kind      text CHECK (exit_kind IN ('mandiri', 'alamiah', 'paksa')),
    effective_date date NOT NULL
);
CREATE INDEX enrolment_steps_household ON enrolment_steps (household_id, version);
CREATE INDEX enrolment_steps_programme ON enrolment_steps (programme, effective_date);
