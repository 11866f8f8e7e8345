-- A payload is written once and posted whole, never searched inside: json keeps it as written,
-- where jsonb's conversion tripled the cost of each insert.
ALTER TABLE deliveries ALTER COLUMN payload TYPE json USING payload::json;
