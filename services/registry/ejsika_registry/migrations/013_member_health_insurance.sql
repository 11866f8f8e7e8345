-- A member's JKN cover (health data), for the health office's "families without health insurance":
-- pbi_jkn (contributions paid by the state), jkn_contributory, none; NULL while not recorded.
ALTER TABLE members ADD COLUMN health_insurance text
    CHECK (health_insurance IN ('pbi_jkn', 'jkn_contributory', 'none'));
