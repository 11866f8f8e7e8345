-- Welfare indicators and history details are written once and read whole, never searched
-- inside: json keeps them as written, where jsonb's conversion tripled the cost of each insert.
ALTER TABLE households ALTER COLUMN welfare TYPE json USING welfare::json;
ALTER TABLE household_history ALTER COLUMN detail TYPE json USING detail::json;
