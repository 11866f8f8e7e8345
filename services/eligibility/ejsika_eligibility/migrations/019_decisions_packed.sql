-- What a what-if reads of each decision in force, packed by PostgreSQL when the decision is written: the
-- household id (16 bytes), score (float4), desil (int2, 0 without one), status (int2: 0 eligible, 1 not
-- eligible, 2 insufficient data), the number of components (int2) and the yearly amount (int8), big-endian.
-- The what-if read these fields from each row and packed them on every question (the row's text and arrays
-- walked to reach them, six values sent and joined), and joined the decisions to the households' narrow state in
-- PostgreSQL: most of its time for a province. It now aggregates these bytes and the state apart, without a join,
-- and pairs them by household id in numpy (`what_if.read`). A write of a decision costs about a microsecond more.
ALTER TABLE decisions ADD COLUMN packed bytea GENERATED ALWAYS AS (
    uuid_send(household_id) || float4send(score) || int2send(coalesce(desil, 0::int2))
    || int2send((CASE status WHEN 'eligible' THEN 0 WHEN 'not_eligible' THEN 1 ELSE 2 END)::int2)
    || int2send(cardinality(components)::int2) || int8send(yearly_amount)) STORED;
