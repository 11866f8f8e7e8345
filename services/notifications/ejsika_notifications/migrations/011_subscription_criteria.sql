-- DCI-shaped criteria of a subscription beyond the region and eligible_only: programmes,
-- enrolment statuses, member age range and school levels, escalation kinds (domain.subscriptions
-- .Filter, as JSON: validated by the API, read back as a Filter), and how often it is told.
ALTER TABLE subscriptions ADD COLUMN criteria jsonb NOT NULL DEFAULT '{}';
ALTER TABLE subscriptions ADD COLUMN frequency text NOT NULL DEFAULT 'immediate'
    CHECK (frequency IN ('immediate', 'daily_digest'));
-- Which ready-made subscription (ready_made/*.json) a subscription was made from, if any.
ALTER TABLE subscriptions ADD COLUMN ready_made text;
