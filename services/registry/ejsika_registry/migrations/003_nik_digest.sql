-- A keyed hash of the NIK (HMAC-SHA256, key from EJSIKA_NIK_HASH_KEY): data-subject requests find
-- a person through it. Rows registered before this migration get theirs at the registry's start.
ALTER TABLE members ADD COLUMN nik_digest bytea;
CREATE INDEX members_nik_digest ON members (nik_digest);
