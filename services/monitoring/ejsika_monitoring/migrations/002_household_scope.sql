-- Households registered before access control: in no pendamping's caseload until one is assigned.
INSERT INTO household_scope (household_id, programme, region_code, pendamping_id)
SELECT household_id, programme, region_code, NULL FROM households
ON CONFLICT (household_id) DO NOTHING;
