-- The run towards mandiri counts welfare observations, not decisions (domain.assessment.prior_high):
-- each decision keeps the registry household version at which the welfare it was made on was last
-- observed, and `prior_high` is the run of observations at the graduation desil before that one.
-- Decisions made before this column have 0: the next decision on a known observation moves the run once.
ALTER TABLE decisions ADD COLUMN welfare_version integer NOT NULL DEFAULT 0;
