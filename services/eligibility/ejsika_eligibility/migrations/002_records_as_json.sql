-- Inputs and explanations are records written once and read whole, never searched inside:
-- json keeps them as written, where jsonb's conversion tripled the cost of each insert.
ALTER TABLE households ALTER COLUMN inputs TYPE json USING inputs::json;
ALTER TABLE assessments ALTER COLUMN explanation TYPE json USING explanation::json;
