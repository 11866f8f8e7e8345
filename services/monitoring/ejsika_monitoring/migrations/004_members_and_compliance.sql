-- Verification of commitments (verifikasi komitmen).

-- The members of each household, as far as verification needs them (who has a commitment):
-- no name, no NIK. From household.registered v2 and the member.* events; a household registered
-- with v1 (no member ids) has no row here until a v2 event names its members.
-- household_version: the household's version of the last change applied (the order guard).
CREATE TABLE members (
    member_id         uuid    PRIMARY KEY,
    household_id      uuid    NOT NULL,
    birth_date        date    NOT NULL,
    sex               text    NOT NULL,
    pregnant          boolean NOT NULL DEFAULT false,
    active            boolean NOT NULL DEFAULT true,
    household_version integer NOT NULL DEFAULT 0
);
CREATE INDEX members_by_household ON members (household_id) WHERE active;

-- One row per household, programme and period verified; revision grows with each correction.
CREATE TABLE compliance_results (
    household_id uuid        NOT NULL,
    programme    text        NOT NULL,
    period_start date        NOT NULL,
    period_end   date        NOT NULL,
    result       text        NOT NULL CHECK (result IN ('compliant', 'non_compliant', 'not_verifiable')),
    members      jsonb       NOT NULL,  -- [MemberCompliance]: member ids and results only
    revision     integer     NOT NULL DEFAULT 1,
    published_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (household_id, programme, period_start)
);

-- The closing of each period of each programme, in batches of households (household_id order):
-- `closed_through` is the last household closed, `closed_at` set when all are.
CREATE TABLE compliance_periods (
    programme      text        NOT NULL,
    period_start   date        NOT NULL,
    period_end     date        NOT NULL,
    closed_through uuid,
    started_at     timestamptz NOT NULL DEFAULT now(),
    closed_at      timestamptz,
    PRIMARY KEY (programme, period_start)
);

-- Escalations raised, one per member, commitment and the period ending the run: never twice.
CREATE TABLE compliance_escalations (
    member_id    uuid        NOT NULL,
    commitment   text        NOT NULL,
    programme    text        NOT NULL,
    period_start date        NOT NULL,
    household_id uuid        NOT NULL,
    raised_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (member_id, commitment, programme, period_start)
);

-- Late visits: the period-close loop re-verifies closed periods for the visits received after
-- this mark (it moves forward as they are read), so intake never waits for verification.
CREATE TABLE compliance_late_mark (
    one            boolean     PRIMARY KEY DEFAULT true CHECK (one),
    received_through timestamptz NOT NULL
);
INSERT INTO compliance_late_mark (received_through) VALUES (now());
CREATE INDEX visit_records_by_arrival ON visit_records (received_at);
