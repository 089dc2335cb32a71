-- The consumer's tables keep their references by how they are written, not by foreign keys. One statement
-- group writes them (`store::receipts::store_receipts`): a batch's places are registered, then its receipts,
-- then their lines with the ids the receipts' insert returned, all in one transaction; nothing deletes a
-- receipt or a place. Each key was checked by a trigger per row, a lookup and a lock of the row it names:
-- about a fifth of the consumer's database CPU with the pipeline at 80% (decisions.md, "The consumer's
-- tables keep their references by how they are written"). `accepted_receipts` keeps its key to `places`:
-- intake's writers remember places' owners, and that key is what catches a place the database lost.
ALTER TABLE receipt_lines DROP CONSTRAINT receipt_lines_receipt_id_fkey;
ALTER TABLE receipts DROP CONSTRAINT receipts_place_id_fkey;
