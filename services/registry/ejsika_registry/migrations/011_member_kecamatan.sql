-- Duplicate blocking (duplicates.py) pairs members born the same day in the same kecamatan. Joining
-- every member of a birth date to its household for the kecamatan cost seconds a batch at a million
-- households, competing with an import; the member carries its household's kecamatan instead (set
-- when it joins, moved with the household's village), and one index answers the blocking.
ALTER TABLE members ADD COLUMN kecamatan text;
UPDATE members m SET kecamatan = left(h.region_code, 6) FROM households h WHERE h.id = m.household_id;
ALTER TABLE members ALTER COLUMN kecamatan SET NOT NULL;
DROP INDEX members_active_birth_date;
CREATE INDEX members_active_blocking ON members (birth_date, kecamatan) INCLUDE (household_id) WHERE ended_at IS NULL;
DROP INDEX households_kecamatan;
