-- The history is written a row per decision announced, most of them at once by a rule change (a row for each
-- family whose decision changed). Two costs of each row are cut here (tests/benchmark/rule_change.py):
--
-- A row (its inputs, explanation and benefits: about 2.5 KB) went over the 2 KB at which PostgreSQL compresses
-- a row's values (pglz, the only method this build has), which cost about as much as the rest of the write.
-- Rows of up to a page are now kept as written: with COPY, a row costs PostgreSQL about a third of the CPU it
-- did, and the table takes about two thirds more room (3.5 KB a row instead of 2.1 KB; reads decompress
-- nothing). Rows written before stay as they are.
ALTER TABLE assessments SET (toast_tuple_target = 8160);

-- assessments_household_page (household_id, assessed_at, event_id) answers whatever this one did.
DROP INDEX assessments_household;
