ALTER TABLE receipts ADD CONSTRAINT receipts_place_id_fkey FOREIGN KEY (place_id) REFERENCES places (place_id);
ALTER TABLE receipt_lines ADD CONSTRAINT receipt_lines_receipt_id_fkey
    FOREIGN KEY (receipt_id) REFERENCES receipts (id) ON DELETE CASCADE;
