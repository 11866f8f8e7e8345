-- Data-quality flags of a member, for an operator to review (e.g. nik_birth_date_mismatch,
-- nik_sex_mismatch: the NIK contradicts the declared birth date or sex). A flag never refuses a family.
ALTER TABLE members ADD COLUMN quality_flags text[] NOT NULL DEFAULT '{}';
