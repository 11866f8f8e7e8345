CREATE TABLE households (
    id            uuid PRIMARY KEY,  -- derived from the client's request id: a retried upload is a no-op
    programme     text        NOT NULL,
    region_code   text        NOT NULL,
    kk_number     text        NOT NULL,
    address       text        NOT NULL,
    welfare       jsonb       NOT NULL,
    status        text        NOT NULL DEFAULT 'registered',
    score         real,
    rule_set      text,
    version       integer     NOT NULL DEFAULT 1,
    registered_at timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX households_region ON households (programme, region_code);
CREATE INDEX households_status ON households (status);

CREATE TABLE members (
    household_id uuid    NOT NULL REFERENCES households (id),
    position     integer NOT NULL,
    nik          text    NOT NULL,
    name         text    NOT NULL,
    sex          text    NOT NULL,
    birth_date   date    NOT NULL,
    relation     text    NOT NULL,
    in_school    boolean NOT NULL,
    pregnant     boolean NOT NULL,
    disability   boolean NOT NULL,
    PRIMARY KEY (household_id, position)
);
-- One person belongs to one registered household: the guard against double registration.
CREATE UNIQUE INDEX members_nik ON members (nik);

-- Every change of a household, with the state after it and what caused it.
CREATE TABLE household_history (
    id           bigserial PRIMARY KEY,
    household_id uuid        NOT NULL REFERENCES households (id),
    version      integer     NOT NULL,
    change       text        NOT NULL,
    detail       jsonb       NOT NULL,
    cause_id     uuid,
    changed_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (household_id, version)
);
