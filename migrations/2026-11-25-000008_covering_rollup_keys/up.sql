-- Analytics read runs of rollups by key, grain and start: the primary keys carry the figures as well, so
-- those reads are index-only scans once autovacuum has marked the pages all-visible (old buckets, which are
-- most of any long period, stop changing). The (grain, start) indexes served recomputes that summed hours
-- across places; recomputes add differences now, and nothing reads by (grain, start) alone.
ALTER TABLE place_rollups DROP CONSTRAINT place_rollups_pkey,
    ADD PRIMARY KEY (place_id, grain, start) INCLUDE (purchases, total_amount, vat_amount, tips_amount);
ALTER TABLE place_category_rollups DROP CONSTRAINT place_category_rollups_pkey,
    ADD PRIMARY KEY (place_id, grain, start, category) INCLUDE (receipts, spent);
ALTER TABLE merchant_rollups DROP CONSTRAINT merchant_rollups_pkey,
    ADD PRIMARY KEY (merchant_id, grain, start) INCLUDE (purchases, total_amount, vat_amount, tips_amount);
ALTER TABLE merchant_category_rollups DROP CONSTRAINT merchant_category_rollups_pkey,
    ADD PRIMARY KEY (merchant_id, grain, start, category) INCLUDE (receipts, spent);
ALTER TABLE total_rollups DROP CONSTRAINT total_rollups_pkey,
    ADD PRIMARY KEY (grain, start) INCLUDE (purchases, total_amount, vat_amount, tips_amount);
ALTER TABLE total_category_rollups DROP CONSTRAINT total_category_rollups_pkey,
    ADD PRIMARY KEY (grain, start, category) INCLUDE (receipts, spent);
DROP INDEX place_rollups_by_start;
DROP INDEX place_category_rollups_by_start;
