-- Closing a period reads the observations of every visit of the period (issue 8: a million households
-- under a minute): stored as jsonb they are parsed once, when the visit is stored, rather than at each
-- verification (json_to_recordset over json text was a quarter of the close's statement). The intake
-- pays that parse once per visit; the API answers the same observations (jsonb may order keys otherwise).
-- Rewrites the table: on a large deployment, run it outside the hours visits are uploaded.
ALTER TABLE visit_records ALTER COLUMN observations TYPE jsonb USING observations::jsonb;
