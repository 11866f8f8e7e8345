-- Webhook signing secrets are stored encrypted (Fernet, keys from EJSIKA_SECRETS_KEYS).
-- SQL cannot encrypt with those keys, so rows written before this migration keep their clear
-- secret in legacy_secret until the service's start-up (or `python -m
-- ejsika_notifications.rotate_secrets`) encrypts it and clears the column: see
-- store.subscriptions.encrypt_legacy_secrets. Each row holds exactly one of the two. A later
-- migration drops legacy_secret once every deployment has started with this version.
ALTER TABLE subscriptions RENAME COLUMN secret TO legacy_secret;
ALTER TABLE subscriptions ALTER COLUMN legacy_secret DROP NOT NULL;
ALTER TABLE subscriptions ADD COLUMN secret_encrypted bytea;
ALTER TABLE subscriptions ADD CONSTRAINT subscriptions_one_secret
    CHECK (num_nonnulls(legacy_secret, secret_encrypted) = 1);
