-- An exit recommended by an eligibility decision (never an exit by itself): its kind, why, when and
-- which event, kept on the enrolment until an operator confirms the exit or a later decision finds the
-- family eligible again. Only an active or suspended enrolment has one.
ALTER TABLE enrolments
    ADD COLUMN recommended_exit_kind text CHECK (recommended_exit_kind IN ('mandiri', 'alamiah', 'paksa')),
    ADD COLUMN recommended_reason    text,
    ADD COLUMN recommended_at        timestamptz,
    ADD COLUMN recommended_by_event  uuid;
ALTER TABLE enrolments
    ADD CONSTRAINT enrolments_exit_has_kind CHECK ((status = 'exited') = (exit_kind IS NOT NULL)),
    ADD CONSTRAINT enrolments_recommendation_held CHECK (
        recommended_exit_kind IS NULL OR (status IN ('active', 'suspended') AND recommended_at IS NOT NULL));
-- The operators' list of exits to confirm, oldest recommendation first.
CREATE INDEX enrolments_recommended_exits ON enrolments (recommended_at, household_id, programme)
    WHERE recommended_exit_kind IS NOT NULL;

-- Households registered before enrolments were kept are candidates of their programme since the day
-- (Asia/Jakarta) they were registered.
INSERT INTO enrolments (household_id, programme, status, effective_date)
SELECT id, programme, 'candidate', (registered_at AT TIME ZONE 'Asia/Jakarta')::date FROM households
ON CONFLICT (household_id, programme) DO NOTHING;
