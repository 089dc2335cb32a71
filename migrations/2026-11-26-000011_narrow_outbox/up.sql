-- An outbox row holds the receipt's key only: the relay reads the receipt from `accepted_receipts`, which
-- already holds it. Marking a row published rewrote it, payload included (about 1 KB of write-ahead log per
-- receipt, and a dead row of the same size for autovacuum). Rows still waiting keep their receipt there.
ALTER TABLE outbox DROP COLUMN payload;
