CREATE INDEX place_rollups_by_start ON place_rollups (grain, start);
CREATE INDEX place_category_rollups_by_start ON place_category_rollups (grain, start);
ALTER TABLE place_rollups DROP CONSTRAINT place_rollups_pkey, ADD PRIMARY KEY (place_id, grain, start);
ALTER TABLE place_category_rollups DROP CONSTRAINT place_category_rollups_pkey,
    ADD PRIMARY KEY (place_id, grain, start, category);
ALTER TABLE merchant_rollups DROP CONSTRAINT merchant_rollups_pkey, ADD PRIMARY KEY (merchant_id, grain, start);
ALTER TABLE merchant_category_rollups DROP CONSTRAINT merchant_category_rollups_pkey,
    ADD PRIMARY KEY (merchant_id, grain, start, category);
ALTER TABLE total_rollups DROP CONSTRAINT total_rollups_pkey, ADD PRIMARY KEY (grain, start);
ALTER TABLE total_category_rollups DROP CONSTRAINT total_category_rollups_pkey, ADD PRIMARY KEY (grain, start, category);
