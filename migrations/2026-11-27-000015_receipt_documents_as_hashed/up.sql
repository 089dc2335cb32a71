-- An accepted receipt's document is kept as the JSON text intake hashed (`json`) instead of parsed into
-- `jsonb`. Nothing queries inside it: the relay publishes it whole. Intake no longer pays PostgreSQL to build
-- jsonb's binary form of every receipt, nor the relay to write it out as text again, and the receipt
-- published is byte for byte the one whose SHA-256 is its content hash (decisions.md, "An accepted receipt
-- is kept as the JSON that was hashed"). Rewrites the table, which it locks meanwhile; documents already
-- stored keep the spacing and key order jsonb gave them.
ALTER TABLE accepted_receipts ALTER COLUMN receipt TYPE json USING receipt::json;
