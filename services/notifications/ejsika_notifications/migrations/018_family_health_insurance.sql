-- A member's JKN cover (the registry's optional health_insurance: pbi_jkn, jkn_contributory, none;
-- NULL while not recorded), kept for the health office's "families without health insurance"
-- (derived.without_health_insurance). Health data: only a profile naming members.health_insurance
-- hears of it.
ALTER TABLE family_members ADD COLUMN health_insurance text;
-- The daily job looks for the members outside JKN.
CREATE INDEX family_members_uninsured ON family_members (household_id) WHERE health_insurance = 'none';
