-- The narrow state of a household (migration 016) packed from `assessed_columns` (migration 009), which PostgreSQL
-- computes on each write of `households` anyway, instead of from the inputs JSON: 016's functions parsed the JSON
-- a second time and repacked each member in a statement of its own, which made a write of `households` about
-- twice as slow (~100 µs a household more, where these cost ~3 µs). The bytes are cut from fixed offsets of 009's
-- layout: indicator i (domain.rules.INDICATORS) is the float8 at 8 + 8 i (a yes/no one is 1.0, 0.0 or NaN, told
-- apart by its first byte: 0x3f, 0x00, 0x7f), the member count the int4 at 128, the members the 26 bytes each
-- from 132 on. `fixed` keeps 016's layout; `members` is now 009's member records as they are (household_columns
-- reads both; a unit test holds the offsets to INDICATORS).
CREATE FUNCTION household_state_fixed(region_code text, enrolment_status text, registered_on date, c bytea)
RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT int4send(coalesce(nullif(left(region_code, 4), ''), '0')::int4)
        || int2send(CASE enrolment_status WHEN 'candidate' THEN 1 WHEN 'active' THEN 2 WHEN 'suspended' THEN 3
                                          WHEN 'exited' THEN 4 ELSE 0 END::int2)
        || int4send(coalesce(registered_on, DATE '9999-12-31') - DATE '2000-01-01')
        || substring(c FROM 9 FOR 8)  -- floor_area_per_person_m2
        || substring(c FROM 121 FOR 8)  -- installed_power_va
        || int4send((get_byte(c, 16) <> 127)::int
                    + (get_byte(c, 24) <> 127)::int * 2
                    + (get_byte(c, 32) <> 127)::int * 4
                    + (get_byte(c, 40) <> 127)::int * 8
                    + (get_byte(c, 48) <> 127)::int * 16
                    + (get_byte(c, 56) <> 127)::int * 32
                    + (get_byte(c, 64) <> 127)::int * 64
                    + (get_byte(c, 72) <> 127)::int * 128
                    + (get_byte(c, 80) <> 127)::int * 256
                    + (get_byte(c, 88) <> 127)::int * 512
                    + (get_byte(c, 96) <> 127)::int * 1024
                    + (get_byte(c, 104) <> 127)::int * 2048
                    + (get_byte(c, 112) <> 127)::int * 4096)
        || int4send((get_byte(c, 16) = 63)::int
                    + (get_byte(c, 24) = 63)::int * 2
                    + (get_byte(c, 32) = 63)::int * 4
                    + (get_byte(c, 40) = 63)::int * 8
                    + (get_byte(c, 48) = 63)::int * 16
                    + (get_byte(c, 56) = 63)::int * 32
                    + (get_byte(c, 64) = 63)::int * 64
                    + (get_byte(c, 72) = 63)::int * 128
                    + (get_byte(c, 80) = 63)::int * 256
                    + (get_byte(c, 88) = 63)::int * 512
                    + (get_byte(c, 96) = 63)::int * 1024
                    + (get_byte(c, 104) = 63)::int * 2048
                    + (get_byte(c, 112) = 63)::int * 4096)
        || substring(c FROM 131 FOR 2)  -- the member count's low half
$$;

-- The members as 009 packs them, cut out whole: repacking each member (a statement per household) cost ~60 µs a
-- household, for 20 bytes a member fewer to read.
CREATE FUNCTION household_state_members(c bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT substring(c FROM 133 FOR 26 * (get_byte(c, 130) << 8 | get_byte(c, 131)))
$$;

CREATE OR REPLACE FUNCTION keep_household_state() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM household_state s USING old_rows o WHERE s.household_id = o.household_id;
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO household_state (household_id, programme, fixed, members)
        SELECT n.household_id, n.programme,
               household_state_fixed(n.region_code, n.enrolment_status, n.registered_on, n.assessed_columns),
               household_state_members(n.assessed_columns)
        FROM new_rows n
        ON CONFLICT (household_id) DO UPDATE
            SET programme = excluded.programme, fixed = excluded.fixed, members = excluded.members;
        RETURN NULL;
    END IF;
    -- only the rows whose packed state could differ: most updates (a review day, a version) leave it
    INSERT INTO household_state (household_id, programme, fixed, members)
    SELECT n.household_id, n.programme,
           household_state_fixed(n.region_code, n.enrolment_status, n.registered_on, n.assessed_columns),
           household_state_members(n.assessed_columns)
    FROM new_rows n JOIN old_rows o ON o.household_id = n.household_id
    WHERE (n.programme, n.region_code, n.enrolment_status, n.registered_on, n.assessed_columns)
          IS DISTINCT FROM (o.programme, o.region_code, o.enrolment_status, o.registered_on, o.assessed_columns)
    ON CONFLICT (household_id) DO UPDATE
        SET programme = excluded.programme, fixed = excluded.fixed, members = excluded.members;
    RETURN NULL;
END
$$;

DROP FUNCTION household_state_fixed(text, text, date, json);
DROP FUNCTION household_state_members(json);

-- the members of the households written before, in the new layout
UPDATE household_state s SET members = household_state_members(h.assessed_columns)
FROM households h WHERE h.household_id = s.household_id;
