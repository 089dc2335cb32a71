ALTER TABLE receipts ADD COLUMN raw JSONB NOT NULL DEFAULT '{}';
UPDATE receipts r SET raw = a.receipt
FROM accepted_receipts a
WHERE a.merchant_id = r.merchant_id AND a.transaction_id = r.transaction_id;
ALTER TABLE receipts ALTER COLUMN raw DROP DEFAULT;
