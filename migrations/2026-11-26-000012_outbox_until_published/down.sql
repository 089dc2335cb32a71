DROP TABLE reconcile_progress;

ALTER TABLE outbox ADD COLUMN published_at TIMESTAMPTZ;
CREATE INDEX outbox_pending ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;

-- Publications still to be checked get their outbox row back, as published.
INSERT INTO outbox (merchant_id, transaction_id, message_key, published_at, replays)
SELECT p.merchant_id, p.transaction_id, a.place_id, p.published_at, p.replays
FROM receipt_publications p
JOIN accepted_receipts a ON a.merchant_id = p.merchant_id AND a.transaction_id = p.transaction_id
WHERE p.check_due_at IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM receipts r
                  WHERE r.merchant_id = p.merchant_id AND r.transaction_id = p.transaction_id);

DROP INDEX receipt_publications_check_due;
ALTER TABLE receipt_publications DROP COLUMN check_due_at, DROP COLUMN replays;
