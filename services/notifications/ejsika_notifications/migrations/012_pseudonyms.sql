-- Every reference (per-agency pseudonym) handed to an agency, with what it stands for: a keyed
-- hash cannot be read back, and an agency's answers name families and members by reference.
-- Looked up per agency only: another agency's reference resolves to nothing.
CREATE TABLE pseudonyms (
    agency      text NOT NULL,
    reference   text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('household', 'member')),
    internal_id uuid NOT NULL,
    PRIMARY KEY (agency, reference)
);
