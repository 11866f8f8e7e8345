-- The agencies' answers to their notifications (answers.py): accepted, service_delivered or declined,
-- each becoming an agency.answered event. A notification may be answered more than once (accepted,
-- then service_delivered when the child is placed). The facts of the notification answered are
-- copied here (household, when it was queued): notifications are pruned after their retention, the
-- answers stay, and a later answer of the same notification still finds its family.
CREATE TABLE agency_answers (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    agency           text        NOT NULL,
    client_id        uuid        NOT NULL,  -- the agency's id of its request: a retry answers the same
    notification_id  uuid        NOT NULL,
    household_id     uuid        NOT NULL,  -- internal: never answered to the agency
    programme        text        NOT NULL,  -- the agency's programme, e.g. sma_smk_placement
    outcome          text        NOT NULL CHECK (outcome IN ('accepted', 'service_delivered', 'declined')),
    reason           text CHECK (length(reason) <= 500),
    member_reference text,                  -- the agency's pseudonym of a member, as it sent it
    member_id        uuid,                  -- that member, when the reference was resolved
    notified_at      timestamptz NOT NULL,  -- when the notification was queued: the start of time to answer
    notified_event   uuid,                  -- the event notified: the cause of agency.answered
    answered_at      timestamptz NOT NULL DEFAULT now(),
    event_id         uuid        NOT NULL,  -- the agency.answered event it became
    UNIQUE (agency, client_id),
    CHECK (outcome <> 'declined' OR reason IS NOT NULL)
);
CREATE INDEX agency_answers_notification ON agency_answers (notification_id, answered_at);
CREATE INDEX agency_answers_agency ON agency_answers (agency, answered_at);
