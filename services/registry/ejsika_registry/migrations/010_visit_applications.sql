-- What the registry did with each change a pendamping's visit reported (visits.py): applied, proposed
-- for a supervisor, unchanged (so already, or reported by a later visit) or refused, and why (a rule, never a
-- value). Keyed by the visit and its change, so a visit uploaded again (a new event, the same visit_id)
-- applies nothing twice. A refusal changes no field of the household, so it is kept here rather than
-- taking a version of its history.
CREATE TABLE visit_applications (
    visit_id     uuid        NOT NULL,
    change       text        NOT NULL,  -- welfare, births/<i>, left/<i>: the change's place in the visit
    household_id uuid        NOT NULL,  -- no reference: a visit of a household unknown here is kept too
    kind         text        NOT NULL,  -- update, member_added, member_ended (the proposals' kinds)
    outcome      text        NOT NULL CHECK (outcome IN ('applied', 'proposed', 'unchanged', 'refused')),
    version      integer,               -- the household's version after it (applied, proposed, unchanged)
    proposal_id  uuid        REFERENCES proposals (id),
    reason       text,                  -- why refused (rule codes, e.g. no_such_member), or what was left out
    fields       text[]      NOT NULL,  -- what it reported, as domain.approval.touched names it (welfare.x)
    captured_at  timestamptz NOT NULL,  -- when the visit happened: a later one is not overwritten by it
    event_id     uuid        NOT NULL,  -- the visit.recorded event it came with (the history's cause)
    applied_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (visit_id, change),
    CHECK ((outcome = 'proposed') = (proposal_id IS NOT NULL)),
    CHECK (outcome <> 'refused' OR reason IS NOT NULL)
);
-- The welfare a household's later visits reported, for a visit arriving late.
CREATE INDEX visit_applications_household ON visit_applications (household_id, captured_at) WHERE kind = 'update';
