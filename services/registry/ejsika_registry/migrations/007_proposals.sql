-- A change from the field that waits for a decision (domain/approval.py): what it would apply, as its
-- route received it, who proposed it and why, and who decided it, when and why. Its submission and
-- its decision are also rows of the household's history.
CREATE TABLE proposals (
    id              uuid        PRIMARY KEY,
    request_id      uuid        UNIQUE,  -- the app's id of the change: a retried upload proposes once
    household_id    uuid        NOT NULL REFERENCES households (id),
    kind            text        NOT NULL,  -- update, member_added, member_ended, member_moved, ...
    payload         json        NOT NULL,
    fields          text[]      NOT NULL,  -- the household fields it touches, as the rules name them
    base_version    integer     NOT NULL,  -- the household's version its author read
    proposed_by     text,
    source          text        NOT NULL,
    reason          text,
    correlation_id  uuid        NOT NULL,  -- of the request that proposed it: the applied change keeps it
    approver        text        NOT NULL,  -- the role that decides it
    status          text        NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'approved', 'rejected', 'superseded')),
    decided_by      text,
    decision_reason text,
    decided_at      timestamptz,
    applied_version integer,  -- the household's version with the change applied, once approved
    superseded_by   uuid      REFERENCES proposals (id),
    region_code     text        NOT NULL,  -- the household's village and programme when proposed
    programme       text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'pending') = (decided_at IS NULL))
);
-- The work queue, oldest first; who may see which rows comes from household_scope.
CREATE INDEX proposals_queue ON proposals (status, created_at, id);
CREATE INDEX proposals_household ON proposals (household_id, created_at);
