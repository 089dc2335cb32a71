ALTER TABLE place_rollups RESET (fillfactor);
ALTER TABLE place_category_rollups RESET (fillfactor);
ALTER TABLE merchant_rollups RESET (fillfactor);
ALTER TABLE merchant_category_rollups RESET (fillfactor);
ALTER TABLE total_rollups RESET (fillfactor);
ALTER TABLE total_category_rollups RESET (fillfactor);
ALTER TABLE place_rollups DROP CONSTRAINT place_rollups_pkey,
    ADD PRIMARY KEY (place_id, grain, start) INCLUDE (purchases, total_amount, vat_amount, tips_amount);
ALTER TABLE place_category_rollups DROP CONSTRAINT place_category_rollups_pkey,
    ADD PRIMARY KEY (place_id, grain, start, category) INCLUDE (receipts, spent);
