ALTER TABLE accepted_receipts ALTER COLUMN receipt TYPE jsonb USING receipt::jsonb;
