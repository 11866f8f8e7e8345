-- The narrow state of every household: what a what-if reads of it (`household_columns.read_state`), packed
-- when its inputs are written. A what-if with another rule set scored the inputs read from `households`,
-- whose rows (the inputs JSON inline, ~1.5 kB) cost most of its time to scan; these rows are ~90 bytes.
--
-- Kept by triggers on `households`, one statement per writing statement (transition tables, never a
-- statement per row), so that every writer of the inputs keeps it current without knowing of it: the input
-- use cases, a replay, a test or a benchmark filling `households` directly.
--
-- Layout, big-endian (PostgreSQL's send functions). `fixed`: the kabupaten/kota (int4, e.g. 3601), the
-- enrolment (int2: 0 none, 1 candidate, 2 active, 3 suspended, 4 exited), the registration day (int4 days
-- since 2000-01-01, 9999-12-31 when not known), the numeric welfare indicators in the order of
-- domain.rules.INDICATORS as float8 (NaN where not observed), then the yes/no indicators in that order as two
-- int4 bit masks (bit k for the k-th: observed, then yes), the member count (int2). `members`: each member as
-- its birth date (int4 days since 2000-01-01) and int2 flags (sex 0 none, 1 F, 2 M; in_school 4; pregnant 8;
-- disability 16). A change of the indicators is a new migration replacing `household_state_fixed` (a unit
-- test holds its names to INDICATORS).
CREATE FUNCTION household_state_fixed(region_code text, enrolment_status text, registered_on date, inputs json)
RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT int4send(coalesce(nullif(left(region_code, 4), ''), '0')::int4)
        || int2send(CASE enrolment_status WHEN 'candidate' THEN 1 WHEN 'active' THEN 2 WHEN 'suspended' THEN 3
                                          WHEN 'exited' THEN 4 ELSE 0 END::int2)
        || int4send(coalesce(registered_on, DATE '9999-12-31') - DATE '2000-01-01')
        || float8send(coalesce(w.floor_area_per_person_m2, 'NaN'))
        || float8send(coalesce(w.installed_power_va, 'NaN'))
        || int4send((w.earth_or_bamboo_floor IS NOT NULL)::int
                    + (w.bamboo_or_unplastered_walls IS NOT NULL)::int * 2
                    + (w.no_private_toilet IS NOT NULL)::int * 4
                    + (w.no_electricity IS NOT NULL)::int * 8
                    + (w.unprotected_water IS NOT NULL)::int * 16
                    + (w.cooks_with_wood_or_kerosene IS NOT NULL)::int * 32
                    + (w.protein_at_most_weekly IS NOT NULL)::int * 64
                    + (w.one_set_of_clothes_a_year IS NOT NULL)::int * 128
                    + (w.at_most_two_meals_a_day IS NOT NULL)::int * 256
                    + (w.cannot_pay_clinic IS NOT NULL)::int * 512
                    + (w.head_low_income IS NOT NULL)::int * 1024
                    + (w.head_primary_education_or_less IS NOT NULL)::int * 2048
                    + (w.no_savings_over_500k IS NOT NULL)::int * 4096)
        || int4send(coalesce(w.earth_or_bamboo_floor, false)::int
                    + coalesce(w.bamboo_or_unplastered_walls, false)::int * 2
                    + coalesce(w.no_private_toilet, false)::int * 4
                    + coalesce(w.no_electricity, false)::int * 8
                    + coalesce(w.unprotected_water, false)::int * 16
                    + coalesce(w.cooks_with_wood_or_kerosene, false)::int * 32
                    + coalesce(w.protein_at_most_weekly, false)::int * 64
                    + coalesce(w.one_set_of_clothes_a_year, false)::int * 128
                    + coalesce(w.at_most_two_meals_a_day, false)::int * 256
                    + coalesce(w.cannot_pay_clinic, false)::int * 512
                    + coalesce(w.head_low_income, false)::int * 1024
                    + coalesce(w.head_primary_education_or_less, false)::int * 2048
                    + coalesce(w.no_savings_over_500k, false)::int * 4096)
        || int2send(CASE json_typeof(e.members) WHEN 'array' THEN json_array_length(e.members) ELSE 0 END::int2)
    FROM json_to_record(inputs) AS e(welfare json, members json)
    LEFT JOIN LATERAL json_to_record(e.welfare)
        AS w(floor_area_per_person_m2 float8, earth_or_bamboo_floor boolean,
             bamboo_or_unplastered_walls boolean, no_private_toilet boolean, no_electricity boolean,
             unprotected_water boolean, cooks_with_wood_or_kerosene boolean, protein_at_most_weekly boolean,
             one_set_of_clothes_a_year boolean, at_most_two_meals_a_day boolean, cannot_pay_clinic boolean,
             head_low_income boolean, head_primary_education_or_less boolean, no_savings_over_500k boolean,
             installed_power_va float8) ON true
$$;

CREATE FUNCTION household_state_members(inputs json) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(string_agg(
               int4send(coalesce(m.birth_date, DATE '2000-01-01') - DATE '2000-01-01')
               || int2send((CASE m.sex WHEN 'F' THEN 1 WHEN 'M' THEN 2 ELSE 0 END
                            + coalesce(m.in_school, false)::int * 4 + coalesce(m.pregnant, false)::int * 8
                            + coalesce(m.disability, false)::int * 16)::int2), ''::bytea ORDER BY m.n), ''::bytea)
    FROM ROWS FROM (json_to_recordset(inputs->'members') AS (sex text, birth_date date, in_school boolean,
         pregnant boolean, disability boolean))
         WITH ORDINALITY AS m(sex, birth_date, in_school, pregnant, disability, n)
$$;

CREATE TABLE household_state (
    household_id uuid  PRIMARY KEY,
    programme    text  NOT NULL,
    fixed        bytea NOT NULL,
    members      bytea NOT NULL
);

CREATE FUNCTION keep_household_state() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM household_state s USING old_rows o WHERE s.household_id = o.household_id;
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO household_state (household_id, programme, fixed, members)
        SELECT n.household_id, n.programme,
               household_state_fixed(n.region_code, n.enrolment_status, n.registered_on, n.inputs),
               household_state_members(n.inputs)
        FROM new_rows n
        ON CONFLICT (household_id) DO UPDATE
            SET programme = excluded.programme, fixed = excluded.fixed, members = excluded.members;
        RETURN NULL;
    END IF;
    -- only the rows whose packed state could differ: most updates (a review day, a version) leave it
    INSERT INTO household_state (household_id, programme, fixed, members)
    SELECT n.household_id, n.programme,
           household_state_fixed(n.region_code, n.enrolment_status, n.registered_on, n.inputs),
           household_state_members(n.inputs)
    FROM new_rows n JOIN old_rows o ON o.household_id = n.household_id
    WHERE (n.programme, n.region_code, n.enrolment_status, n.registered_on, n.assessed_columns)
          IS DISTINCT FROM (o.programme, o.region_code, o.enrolment_status, o.registered_on, o.assessed_columns)
    ON CONFLICT (household_id) DO UPDATE
        SET programme = excluded.programme, fixed = excluded.fixed, members = excluded.members;
    RETURN NULL;
END
$$;

CREATE TRIGGER household_state_inserted AFTER INSERT ON households
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION keep_household_state();
CREATE TRIGGER household_state_updated AFTER UPDATE ON households
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION keep_household_state();
CREATE TRIGGER household_state_deleted AFTER DELETE ON households
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION keep_household_state();

INSERT INTO household_state (household_id, programme, fixed, members)
SELECT household_id, programme, household_state_fixed(region_code, enrolment_status, registered_on, inputs),
       household_state_members(inputs)
FROM households;
ANALYZE household_state;  -- without statistics, a what-if's join would look up each decision by its index
