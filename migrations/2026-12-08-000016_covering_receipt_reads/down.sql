DROP INDEX receipts_place_purchased;
CREATE INDEX receipts_place_purchased ON receipts (place_id, purchased_at);
ALTER TABLE receipt_lines DROP CONSTRAINT receipt_lines_pkey, ADD PRIMARY KEY (receipt_id, line_no);
