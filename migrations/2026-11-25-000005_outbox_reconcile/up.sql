-- The pipeline reconcile: published outbox rows are kept until the consumer has stored their receipt, then
-- deleted; a row whose receipt is still missing after a grace period is published again (`replays` times,
-- each wait twice as long as the one before).
ALTER TABLE outbox ADD COLUMN replays INTEGER NOT NULL DEFAULT 0;
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;
