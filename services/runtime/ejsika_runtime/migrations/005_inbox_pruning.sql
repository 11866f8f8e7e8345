-- The inbox is pruned by age (inbox.prune): the oldest ids are found by this index, not a scan.
CREATE INDEX inbox_applied_at ON inbox (applied_at);
