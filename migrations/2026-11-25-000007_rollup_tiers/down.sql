CREATE TABLE place_hour_rollups (
    place_id TEXT NOT NULL,
    hour TIMESTAMPTZ NOT NULL,
    purchases BIGINT NOT NULL,
    total_amount NUMERIC NOT NULL,
    vat_amount NUMERIC NOT NULL,
    tips_amount NUMERIC NOT NULL,
    computed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (place_id, hour)
);
CREATE INDEX place_hour_rollups_hour ON place_hour_rollups (hour);

CREATE TABLE category_hour_rollups (
    place_id TEXT NOT NULL,
    hour TIMESTAMPTZ NOT NULL,
    category TEXT NOT NULL,
    receipts BIGINT NOT NULL,
    spent NUMERIC NOT NULL,
    computed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (place_id, hour, category)
);
CREATE INDEX category_hour_rollups_hour ON category_hour_rollups (hour);

INSERT INTO place_hour_rollups (place_id, hour, purchases, total_amount, vat_amount, tips_amount, computed_at)
SELECT place_id, start, purchases, total_amount, vat_amount, tips_amount, computed_at
FROM place_rollups WHERE grain = 'hour';
INSERT INTO category_hour_rollups (place_id, hour, category, receipts, spent, computed_at)
SELECT place_id, start, category, receipts, spent, computed_at
FROM place_category_rollups WHERE grain = 'hour';

DROP TABLE total_category_rollups;
DROP TABLE total_rollups;
DROP TABLE merchant_category_rollups;
DROP TABLE merchant_rollups;
DROP TABLE place_category_rollups;
DROP TABLE place_rollups;
