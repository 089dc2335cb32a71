DROP INDEX outbox_published;
ALTER TABLE outbox DROP COLUMN replays;
