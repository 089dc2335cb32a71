ALTER TABLE accepted_receipts ADD COLUMN published_at TIMESTAMPTZ;

UPDATE accepted_receipts a SET published_at = p.published_at
FROM receipt_publications p
WHERE p.merchant_id = a.merchant_id AND p.transaction_id = a.transaction_id;

DROP TABLE receipt_publications;
