-- The family projection (issue 10): what agencies' data profiles may name, and nothing else.
-- Built from the registry's household and member events (ejsika_notifications.families), so that a
-- notification can say which child or mother it is about without calling the registry back.
-- Kept: the village and programme (filters, the family's place), the enrolment status (only
-- active KPM are told of), and per member the NIK, name, birth date, sex, relation and whether in
-- school (the education and health offices act on a named person; age and school level follow
-- from birth date and schooling). Not kept, on purpose: the No. KK, the address, the welfare
-- indicators (income, assets), pregnancy and disability, and the pendamping: no profile may name
-- what is not here. A member's row goes when they leave the family.
CREATE TABLE families (
    household_id     uuid PRIMARY KEY,
    version          integer NOT NULL,  -- the registry's household version: the order guard
    programme        text    NOT NULL,
    region_code      text    NOT NULL,
    enrolment_status text,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX families_active ON families (household_id) WHERE enrolment_status = 'active';

CREATE TABLE family_members (
    household_id uuid    NOT NULL REFERENCES families (household_id) ON DELETE CASCADE,
    member_id    uuid    NOT NULL,
    nik          text,
    name         text    NOT NULL,
    birth_date   date    NOT NULL,
    sex          text    NOT NULL,
    relation     text    NOT NULL,
    in_school    boolean NOT NULL,
    PRIMARY KEY (household_id, member_id)
);
-- The daily job looks for pupils born in one year's window (children entering SMA).
CREATE INDEX family_members_pupils ON family_members (birth_date) WHERE in_school;
