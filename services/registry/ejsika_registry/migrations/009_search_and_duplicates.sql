-- Search (search.py): an index for each filter of GET /households, the list itself walking the
-- primary key (keyset on id). A region prefix is a range of village codes: all are 10 digits, so
-- 'prefix0..0'..'prefix9..9' is the prefix in any collation. A programme uses households_region
-- (programme, region_code), an enrolment status in a programme enrolments_status (006), one in any
-- programme enrolments_by_status; a NIK members_nik_digest (003).
CREATE INDEX households_region_code ON households (region_code);
CREATE INDEX enrolments_by_status ON enrolments (status, household_id);
-- Few members carry a data-quality flag: the index holds only the active ones that do.
CREATE INDEX members_flagged ON members USING gin (quality_flags)
    WHERE ended_at IS NULL AND quality_flags <> '{}';

-- Likely duplicates the NIK did not catch (duplicates.py). Registering a household (or changing its
-- members) queues it here in the same transaction; a background loop takes the queue in batches,
-- compares their active members with everyone's of the same birth date in the same kecamatan, and
-- proposes the similar names as candidate pairs for an operator to merge or dismiss.
--
-- The names are scored by RapidFuzz in the service, not by pg_trgm: the embedded PostgreSQL ships
-- pg_trgm, but a service's role (db_roles: no CREATE on the database) may not create an extension,
-- and a trigram index on every name would slow the import for a query that blocks on birth date
-- and kecamatan first and so compares only a handful of names per member.
CREATE TABLE duplicate_checks (
    household_id uuid PRIMARY KEY REFERENCES households (id),
    queued_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX duplicate_checks_queued ON duplicate_checks (queued_at);
-- The blocking: active members by birth date, households by kecamatan.
CREATE INDEX members_active_birth_date ON members (birth_date) INCLUDE (household_id) WHERE ended_at IS NULL;
CREATE INDEX households_kecamatan ON households (left(region_code, 6));

-- One row per pair of memberships ever proposed, member_a < member_b: a decided pair (merged or
-- dismissed) stays decided, and is never proposed again. The decision is the pair's history.
CREATE TABLE duplicate_candidates (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    member_a        uuid        NOT NULL,
    household_a     uuid        NOT NULL REFERENCES households (id),
    member_b        uuid        NOT NULL,
    household_b     uuid        NOT NULL REFERENCES households (id),
    score           real        NOT NULL,
    reasons         text[]      NOT NULL,
    status          text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'merged', 'dismissed')),
    found_at        timestamptz NOT NULL DEFAULT now(),
    decided_at      timestamptz,
    decided_by      text,
    decision_reason text,
    kept_member_id  uuid,
    UNIQUE (member_a, member_b),
    CHECK (member_a < member_b),
    CHECK ((status = 'open') = (decided_at IS NULL)),
    CHECK ((status = 'merged') = (kept_member_id IS NOT NULL))
);
CREATE INDEX duplicate_candidates_by_status ON duplicate_candidates (status, id);
