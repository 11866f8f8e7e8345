-- Rule sets as data (issue 9): every version of every programme's rules, one active per programme.
CREATE TABLE rule_sets (
    programme text        NOT NULL,
    version   integer     NOT NULL CHECK (version >= 1),
    document  json        NOT NULL,  -- as loaded, after validation (domain/rules.py)
    loaded_by text        NOT NULL,  -- the admin's subject, or 'eligibility' for the shipped defaults
    loaded_at timestamptz NOT NULL DEFAULT now(),
    active    boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (programme, version)
);
CREATE UNIQUE INDEX rule_sets_one_active ON rule_sets (programme) WHERE active;

-- The current decision per household, programme and rule-set version. A rule change writes the new
-- version's decisions beside the old ones (active_rule false) so that they can be compared.
CREATE TABLE decisions (
    household_id  uuid        NOT NULL,
    programme     text        NOT NULL,
    rule_version  integer     NOT NULL,
    region_code   text        NOT NULL,
    score         real        NOT NULL,
    desil         smallint    CHECK (desil BETWEEN 1 AND 10),  -- NULL with insufficient data
    status        text        NOT NULL CHECK (status IN ('eligible', 'not_eligible', 'insufficient_data')),
    missing       text[]      NOT NULL,
    components    text[]      NOT NULL,
    yearly_amount bigint      NOT NULL CHECK (yearly_amount >= 0),
    graduation    text        CHECK (graduation IN ('mandiri', 'alamiah')),
    proposed_exit text        CHECK (proposed_exit IN ('paksa', 'mandiri', 'alamiah')),
    prior_high    smallint    NOT NULL DEFAULT 0,  -- assessments in a row at the graduation desil before this one
    assessed_on   date        NOT NULL,  -- the programme day ages were taken on
    fingerprint   text        NOT NULL,
    event_id      uuid        NOT NULL,  -- the assessment (assessments.event_id) that made this decision
    decided_at    timestamptz NOT NULL DEFAULT now(),
    active_rule   boolean     NOT NULL,  -- made under the programme's active version
    PRIMARY KEY (household_id, programme, rule_version)
);
-- The decisions in force; also finds those a rule change has not reached (an older version still active).
CREATE INDEX decisions_active ON decisions (programme, rule_version, household_id) WHERE active_rule;

-- The history of every decision: each row keeps the inputs, day, context and rule version it was made
-- from, so that it can be recomputed and compared (POST .../recompute). Rows from before issue 9 have
-- no inputs and cannot be.
ALTER TABLE assessments
    ALTER COLUMN cause_id DROP NOT NULL,  -- the passing of time has no cause event
    ADD COLUMN programme     text,
    ADD COLUMN rule_version  integer,
    ADD COLUMN status        text,
    ADD COLUMN desil         smallint,
    ADD COLUMN missing       text[],
    ADD COLUMN benefits      json,
    ADD COLUMN yearly_amount bigint,
    ADD COLUMN graduation    text,
    ADD COLUMN proposed_exit json,
    ADD COLUMN fingerprint   text,
    ADD COLUMN inputs        json,
    ADD COLUMN assessed_on   date,
    ADD COLUMN prior_high    smallint,
    ADD COLUMN active        boolean,
    ADD COLUMN announced     boolean NOT NULL DEFAULT true;  -- an eligibility.assessed event was emitted
CREATE INDEX assessments_household_page ON assessments (household_id, assessed_at, event_id);

-- Reassessing a programme after a rule change: the job's progress survives a restart, which resumes it.
CREATE TABLE reassessments (
    job_id        uuid        PRIMARY KEY,
    programme     text        NOT NULL,
    from_version  integer,  -- the version active before; NULL when there was none
    to_version    integer     NOT NULL,
    state         text        NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'done', 'failed')),
    total         integer     NOT NULL,
    done          integer     NOT NULL DEFAULT 0,
    changed       integer     NOT NULL DEFAULT 0,  -- decisions that differ from the old version's (announced)
    after_id      uuid,  -- households are walked in id order: the last one done
    requested_by  text        NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    claimed_until timestamptz,  -- the lease of the replica running it; a lapsed lease is taken over
    error         text
);
CREATE INDEX reassessments_running ON reassessments (started_at) WHERE state = 'running';
CREATE INDEX households_programme ON households (programme, household_id);
