-- Quotas per programme, year and kabupaten/kota, in families and in budget, with the funders that share
-- the budget; and every admission into a quota (domain/quotas.py says who is admitted).
CREATE TABLE quotas (
    programme   text     NOT NULL,
    year        smallint NOT NULL CHECK (year BETWEEN 2000 AND 2100),
    region_code text     NOT NULL CHECK (region_code ~ '^[0-9]{4}$'),  -- the kabupaten/kota (PP.KK)
    families    integer  NOT NULL CHECK (families >= 0),
    budget      bigint   NOT NULL CHECK (budget >= 0),  -- Rupiah a year
    funders     json     NOT NULL,  -- [{"funder": .., "share": ..}], shares adding up to 1
    version     integer  NOT NULL DEFAULT 1,  -- the ETag: every change adds one
    updated_by  text     NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (programme, year, region_code)
);

-- An admission holds its place from the moment it is announced until the registry has applied it (the
-- household leaves `candidate`): `settled_at` marks that moment.
CREATE TABLE admissions (
    event_id      uuid PRIMARY KEY,  -- the quota.admitted event
    household_id  uuid     NOT NULL,
    programme     text     NOT NULL,
    year          smallint NOT NULL,
    region_code   text     NOT NULL,
    rank          integer  NOT NULL,
    score         real     NOT NULL,
    yearly_amount bigint   NOT NULL,
    admitted_at   timestamptz NOT NULL DEFAULT now(),
    settled_at    timestamptz
);
CREATE INDEX admissions_pending ON admissions (household_id) WHERE settled_at IS NULL;
CREATE INDEX admissions_cell ON admissions (programme, year, region_code);

-- The families holding a place, counted at each allocation.
CREATE INDEX households_held ON households (programme, left(region_code, 4))
    WHERE enrolment_status IN ('active', 'suspended');
