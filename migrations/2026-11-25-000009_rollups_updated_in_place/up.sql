-- The consumer adds every batch to the rollups, so their rows are updated all the time. An update can stay on
-- its page without touching any index (a HOT update) only when no indexed column changes and the page has
-- room: the figures leave the place tables' primary keys (the place tables take most of the writes, and a
-- place's reads are small), and every rollup table keeps a fifth of each page free for new row versions.
ALTER TABLE place_rollups DROP CONSTRAINT place_rollups_pkey, ADD PRIMARY KEY (place_id, grain, start);
ALTER TABLE place_category_rollups DROP CONSTRAINT place_category_rollups_pkey,
    ADD PRIMARY KEY (place_id, grain, start, category);
ALTER TABLE place_rollups SET (fillfactor = 80);
ALTER TABLE place_category_rollups SET (fillfactor = 80);
ALTER TABLE merchant_rollups SET (fillfactor = 80);
ALTER TABLE merchant_category_rollups SET (fillfactor = 80);
ALTER TABLE total_rollups SET (fillfactor = 80);
ALTER TABLE total_category_rollups SET (fillfactor = 80);
