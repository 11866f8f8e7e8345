-- Which family each delivery is about, for the record of what was shared with whom
-- (the payload carries it only if the agency's profile allows). Older rows have none.
ALTER TABLE deliveries ADD COLUMN household_id uuid;
