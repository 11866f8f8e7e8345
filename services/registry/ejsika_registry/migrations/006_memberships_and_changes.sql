-- A member row is a membership: one person's time in one household. It ends (death, marriage out,
-- a move) instead of being deleted, so the history keeps where everyone was.
ALTER TABLE members
    ADD COLUMN member_id  uuid NOT NULL DEFAULT gen_random_uuid(),
    ADD COLUMN nik_status text NOT NULL DEFAULT 'verified',
    ADD COLUMN ended_at   timestamptz,
    ADD COLUMN end_kind   text,
    ADD COLUMN ended_on   date;
ALTER TABLE members ALTER COLUMN nik DROP NOT NULL;
ALTER TABLE members ADD CONSTRAINT members_nik_status CHECK (
    (nik_status = 'verified' AND nik IS NOT NULL) OR (nik_status = 'pending' AND nik IS NULL)
    OR nik_status = 'unmatched');
CREATE UNIQUE INDEX members_member_id ON members (member_id);
-- A person belongs to one household at a time; where they were before stays in ended memberships.
DROP INDEX members_nik;
CREATE UNIQUE INDEX members_active_nik ON members (nik) WHERE ended_at IS NULL;

-- Each change: which fields, their old and new values ({"address": {"old": .., "new": ..}}; a
-- member is the field "members/<member_id>", null when absent), who made it, from where, and why.
-- A household as of a past moment is today's state with the later changes undone.
ALTER TABLE household_history
    ADD COLUMN changes json NOT NULL DEFAULT '{}',
    ADD COLUMN source  text NOT NULL DEFAULT 'app',
    ADD COLUMN actor   text,
    ADD COLUMN reason  text;

-- A household's enrolment in each programme: candidate -> active -> suspended -> exited (with the
-- exit's kind), and again candidate when a family that left is surveyed anew.
CREATE TABLE enrolments (
    household_id   uuid        NOT NULL REFERENCES households (id),
    programme      text        NOT NULL,
    status         text        NOT NULL CHECK (status IN ('candidate', 'active', 'suspended', 'exited')),
    exit_kind      text        CHECK (exit_kind IN ('mandiri', 'alamiah', 'paksa')),
    reason         text,
    effective_date date        NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (household_id, programme)
);
CREATE INDEX enrolments_status ON enrolments (programme, status);
