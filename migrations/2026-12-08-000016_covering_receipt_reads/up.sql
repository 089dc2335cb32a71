-- A recompute job reads each hour bucket's receipts by place and time, and their lines by receipt, for their
-- figures only. The two keys now carry those figures, so these reads are index-only scans once autovacuum
-- has marked the pages all-visible (receipts and lines are only inserted). A late receipt's hour was stored
-- long before, and its first check read the heap page of each receipt and of each line: at 10,000,000
-- receipts, 554 of the 1,500 pages a job of 100 late receipts' hours read from disk (decisions.md, "Recompute
-- jobs read receipts and lines from their keys"). The receipts' key leaves out `stored_at`: a check reads a
-- recent hour's receipts stored since its last check by `(place_id, stored_at)`, and with `stored_at` here the
-- planner read those from this key instead, every receipt of the place. Rebuilds both indexes, holding the
-- tables' writes meanwhile.
DROP INDEX receipts_place_purchased;
CREATE INDEX receipts_place_purchased ON receipts (place_id, purchased_at)
    INCLUDE (id, total_amount, vat_amount, tips_amount);
ALTER TABLE receipt_lines DROP CONSTRAINT receipt_lines_pkey,
    ADD PRIMARY KEY (receipt_id, line_no) INCLUDE (category, amount);
