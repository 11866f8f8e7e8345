-- Notices about a family this service has not projected yet (an escalation or a visit can arrive
-- before the registry's events of its family), kept while a subscription's filter needs the family
-- (its region, programme, enrolment or members) to decide: matched again once the family is known.
CREATE TABLE awaiting_family (
    event_id     uuid PRIMARY KEY,
    household_id uuid        NOT NULL,
    event_type   text        NOT NULL,
    occurred_at  timestamptz NOT NULL,
    facts        jsonb       NOT NULL,
    member_ids   uuid[],
    held_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX awaiting_family_household ON awaiting_family (household_id);
