-- The inputs an assessment reads, packed once when they are written, for the bulk readers (a rule change,
-- a what-if with another rule set; `household_columns`). Unpacking the inputs JSON was most of the cost of
-- reassessing a whole programme; PostgreSQL now does it on each write of a household (tens of microseconds)
-- and a bulk read is a plain COPY of these bytes, which numpy reads as they come.
--
-- Layout, big-endian (PostgreSQL's send functions): welfare_version int8; each welfare indicator in the order
-- of WelfareIndicators' fields (domain.rules.INDICATORS) as float8, NaN where not observed, booleans 1/0;
-- the member count int4; each member as member_id (16 bytes, zero without one), has an id (1), birth date
-- (int4 days since 2000-01-01), sex (int2: 0 none, 1 F, 2 M), in_school, pregnant, disability (1 each); then
-- the escalation kind's UTF-8 bytes (none without an escalation). A change of the indicators is a new
-- migration replacing this function (a unit test holds its names to INDICATORS).
CREATE FUNCTION assessed_columns(inputs json) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT int8send(coalesce(e.welfare_version, 0))
        || float8send(coalesce(w.floor_area_per_person_m2, 'NaN'))
        || float8send(coalesce(w.earth_or_bamboo_floor::int::float8, 'NaN'))
        || float8send(coalesce(w.bamboo_or_unplastered_walls::int::float8, 'NaN'))
        || float8send(coalesce(w.no_private_toilet::int::float8, 'NaN'))
        || float8send(coalesce(w.no_electricity::int::float8, 'NaN'))
        || float8send(coalesce(w.unprotected_water::int::float8, 'NaN'))
        || float8send(coalesce(w.cooks_with_wood_or_kerosene::int::float8, 'NaN'))
        || float8send(coalesce(w.protein_at_most_weekly::int::float8, 'NaN'))
        || float8send(coalesce(w.one_set_of_clothes_a_year::int::float8, 'NaN'))
        || float8send(coalesce(w.at_most_two_meals_a_day::int::float8, 'NaN'))
        || float8send(coalesce(w.cannot_pay_clinic::int::float8, 'NaN'))
        || float8send(coalesce(w.head_low_income::int::float8, 'NaN'))
        || float8send(coalesce(w.head_primary_education_or_less::int::float8, 'NaN'))
        || float8send(coalesce(w.no_savings_over_500k::int::float8, 'NaN'))
        || float8send(coalesce(w.installed_power_va, 'NaN'))
        || (SELECT int4send(count(*)::int4) || coalesce(string_agg(
                uuid_send(coalesce(m.member_id, '00000000-0000-0000-0000-000000000000'))
                || boolsend(m.member_id IS NOT NULL)
                || int4send(coalesce(m.birth_date, DATE '2000-01-01') - DATE '2000-01-01')
                || int2send(CASE m.sex WHEN 'F' THEN 1 WHEN 'M' THEN 2 ELSE 0 END::int2)
                || boolsend(coalesce(m.in_school, false)) || boolsend(coalesce(m.pregnant, false))
                || boolsend(coalesce(m.disability, false)), ''::bytea ORDER BY m.n), ''::bytea)
            FROM ROWS FROM (json_to_recordset(e.members) AS (member_id uuid, sex text, birth_date date,
                 in_school boolean, pregnant boolean, disability boolean))
                 WITH ORDINALITY AS m(member_id, sex, birth_date, in_school, pregnant, disability, n))
        || coalesce(textsend(e.escalation->>'kind'), ''::bytea)
    FROM json_to_record(inputs) AS e(welfare json, members json, escalation json, welfare_version bigint)
    LEFT JOIN LATERAL json_to_record(e.welfare)
        AS w(floor_area_per_person_m2 float8, earth_or_bamboo_floor boolean, bamboo_or_unplastered_walls boolean, no_private_toilet boolean, no_electricity boolean, unprotected_water boolean, cooks_with_wood_or_kerosene boolean, protein_at_most_weekly boolean, one_set_of_clothes_a_year boolean, at_most_two_meals_a_day boolean, cannot_pay_clinic boolean, head_low_income boolean, head_primary_education_or_less boolean, no_savings_over_500k boolean, installed_power_va float8) ON true
$$;

ALTER TABLE households ADD COLUMN assessed_columns bytea GENERATED ALWAYS AS (assessed_columns(inputs)) STORED;
