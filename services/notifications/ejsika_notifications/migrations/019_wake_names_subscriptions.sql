-- The delivery workers' wake-up names the subscriptions that got notifications (their ids, comma
-- separated), so that a worker already draining all of them is not woken for nothing: its drain
-- takes what was queued before it ends, and its end wakes the worker anyway. A statement queuing
-- for too many subscriptions to name sends '' (wake up, whatever is draining); one that queued
-- nothing (every row already there) no longer wakes anyone.
CREATE OR REPLACE FUNCTION notify_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    named text;
BEGIN
    SELECT string_agg(DISTINCT subscription_id::text, ',') INTO named FROM queued;
    IF named IS NOT NULL THEN
        PERFORM pg_notify(TG_TABLE_SCHEMA || '_deliveries', CASE WHEN length(named) <= 7000 THEN named ELSE '' END);
    END IF;
    RETURN NULL;
END
$$;
DROP TRIGGER deliveries_queued ON deliveries;
CREATE TRIGGER deliveries_queued AFTER INSERT ON deliveries REFERENCING NEW TABLE AS queued
    FOR EACH STATEMENT EXECUTE FUNCTION notify_deliveries();
