-- An outbox row lives until its receipt is published: the relay deletes it in the transaction that records
-- the publication in `receipt_publications`, instead of rewriting it as published for the reconcile to delete
-- once the consumer had stored the receipt. Under sustained intake that rewrite was a second version of every
-- row, and the reconcile's delete of 30 s of rows took 1.0-1.4 s, the slowest seconds of intake.
--
-- The reconcile now reads the publications: each is due for a check `RECONCILE_GRACE_SECONDS` after it
-- (twice as long after each replay, `replays`), and the reconcile checks the publications that fell due
-- since its last pass (`reconcile_progress`), queuing again the receipts the consumer has not stored.
ALTER TABLE receipt_publications
    ADD COLUMN replays INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN check_due_at TIMESTAMPTZ;

-- Receipts published before: those whose outbox row was still waiting for the consumer are checked as they
-- would have been (after the default grace of 120 s, doubled per replay), the others never again.
UPDATE receipt_publications p
SET replays = o.replays,
    check_due_at = o.published_at + make_interval(secs => 120 * (1 << least(o.replays, 6)))
FROM outbox o
WHERE o.published_at IS NOT NULL
  AND o.merchant_id = p.merchant_id AND o.transaction_id = p.transaction_id;

CREATE INDEX receipt_publications_check_due ON receipt_publications (check_due_at)
    WHERE check_due_at IS NOT NULL;

DELETE FROM outbox WHERE published_at IS NOT NULL;
DROP INDEX outbox_pending;
DROP INDEX outbox_published;
ALTER TABLE outbox DROP COLUMN published_at;

-- How far the reconcile has checked: every publication due until `checked_until` was checked.
CREATE TABLE reconcile_progress (
    singleton BOOLEAN PRIMARY KEY DEFAULT true CHECK (singleton),
    checked_until TIMESTAMPTZ NOT NULL
);
INSERT INTO reconcile_progress (checked_until) VALUES ('epoch');
