-- The visit schedule of active households (issue 8). Only a household ACTIVE in a programme is scheduled;
-- monitoring learns enrolments from the registry's enrolment.changed events.

-- Each household's enrolment per programme, as the registry last said it (version: the order guard).
CREATE TABLE enrolments (
    household_id   uuid        NOT NULL,
    programme      text        NOT NULL,
    status         text        NOT NULL CHECK (status IN ('candidate', 'active', 'suspended', 'exited')),
    effective_date date        NOT NULL,
    version        integer     NOT NULL,
    changed_at     timestamptz NOT NULL,
    PRIMARY KEY (household_id, programme)
);
CREATE INDEX enrolments_active ON enrolments (programme, household_id) WHERE status = 'active';

-- The head of each household's schedule, beside its open due visit in `visits`:
--   status         'active' when active in some programme, else its last enrolment status; NULL for the
--                  households followed before monitoring read enrolments (unknown: their open first
--                  visit stays open, a visit still closes it, and an enrolment event settles them);
--   interval_days  how often it is visited (the shortest interval of its active programmes);
--   next_due       the due date of its open due visit (NULL: nothing due);
--   overdue_since  the due date it became overdue on, set once by the overdue check, cleared by a visit;
--   last_visit_at  the latest captured_at of its visits: the schedule never moves back for a late one.
ALTER TABLE households
    ADD COLUMN status        text CHECK (status IN ('candidate', 'active', 'suspended', 'exited')),
    ADD COLUMN interval_days integer NOT NULL DEFAULT 30,
    ADD COLUMN next_due      date,
    ADD COLUMN overdue_since date,
    ADD COLUMN last_visit_at timestamptz;

-- A due visit covers the days from opens_on to its due date: a visit captured on or after opens_on
-- closes it (early within its period, or late). cancelled_at: the family left or was suspended.
ALTER TABLE visits
    ADD COLUMN opens_on     date,
    ADD COLUMN cancelled_at timestamptz,
    ADD COLUMN closed_by    uuid;  -- the recorded visit that closed it

-- The old first visits were due 14 days after registration: their period opened on registration.
UPDATE visits SET opens_on = due_date - 14;
ALTER TABLE visits ALTER COLUMN opens_on SET NOT NULL;
UPDATE households h SET next_due = v.due_date
  FROM visits v WHERE v.household_id = h.household_id AND v.done_at IS NULL;

DROP INDEX visits_open_by_due;
-- At most one open due visit per household: the schedule is a sequence, not a pile.
CREATE UNIQUE INDEX visits_one_open ON visits (household_id) WHERE done_at IS NULL AND cancelled_at IS NULL;
CREATE INDEX visits_by_household ON visits (household_id, due_date);

-- The overdue check reads only the households not yet overdue, by due date; the gauge and the overdue
-- list read every household with something due.
CREATE INDEX households_becoming_overdue ON households (next_due) WHERE overdue_since IS NULL AND next_due IS NOT NULL;
CREATE INDEX households_due ON households (next_due) WHERE next_due IS NOT NULL;
CREATE INDEX households_active ON households (household_id) WHERE status = 'active';
