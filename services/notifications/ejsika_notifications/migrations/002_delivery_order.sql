-- Queueing order: rows queued by one batch share created_at (now() is the transaction's start).
ALTER TABLE deliveries ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (subscription_id, next_attempt_at, seq) WHERE status = 'pending';
DROP INDEX deliveries_recent;
CREATE INDEX deliveries_recent ON deliveries (subscription_id, seq DESC);
