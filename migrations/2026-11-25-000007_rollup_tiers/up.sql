-- Rollup tiers: exact sums per UTC hour, day and month, for each place, for each merchant's places and for
-- every place, with the figures per category beside them. A period reads whole months, then whole days, then
-- whole hours, and scans only the partial hours at its edges; the overall summary reads the total rows, so
-- it costs the same however many places there are. They replace the hourly rollups of places.

CREATE TABLE place_rollups (
    place_id TEXT NOT NULL,
    grain TEXT NOT NULL CHECK (grain IN ('hour', 'day', 'month')),
    start TIMESTAMPTZ NOT NULL,
    purchases BIGINT NOT NULL,
    total_amount NUMERIC NOT NULL,
    vat_amount NUMERIC NOT NULL,
    tips_amount NUMERIC NOT NULL,
    computed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (place_id, grain, start)
);
-- The places' rows of one hour, summed into the merchant and total rows.
CREATE INDEX place_rollups_by_start ON place_rollups (grain, start);

CREATE TABLE place_category_rollups (
    place_id TEXT NOT NULL,
    grain TEXT NOT NULL CHECK (grain IN ('hour', 'day', 'month')),
    start TIMESTAMPTZ NOT NULL,
    category TEXT NOT NULL,
    receipts BIGINT NOT NULL,
    spent NUMERIC NOT NULL,
    computed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (place_id, grain, start, category)
);
CREATE INDEX place_category_rollups_by_start ON place_category_rollups (grain, start);

CREATE TABLE merchant_rollups (
    merchant_id TEXT NOT NULL,
    grain TEXT NOT NULL CHECK (grain IN ('hour', 'day', 'month')),
    start TIMESTAMPTZ NOT NULL,
    purchases BIGINT NOT NULL,
    total_amount NUMERIC NOT NULL,
    vat_amount NUMERIC NOT NULL,
    tips_amount NUMERIC NOT NULL,
    computed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (merchant_id, grain, start)
);

CREATE TABLE merchant_category_rollups (
    merchant_id TEXT NOT NULL,
    grain TEXT NOT NULL CHECK (grain IN ('hour', 'day', 'month')),
    start TIMESTAMPTZ NOT NULL,
    category TEXT NOT NULL,
    receipts BIGINT NOT NULL,
    spent NUMERIC NOT NULL,
    computed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (merchant_id, grain, start, category)
);

CREATE TABLE total_rollups (
    grain TEXT NOT NULL CHECK (grain IN ('hour', 'day', 'month')),
    start TIMESTAMPTZ NOT NULL,
    purchases BIGINT NOT NULL,
    total_amount NUMERIC NOT NULL,
    vat_amount NUMERIC NOT NULL,
    tips_amount NUMERIC NOT NULL,
    computed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (grain, start)
);

CREATE TABLE total_category_rollups (
    grain TEXT NOT NULL CHECK (grain IN ('hour', 'day', 'month')),
    start TIMESTAMPTZ NOT NULL,
    category TEXT NOT NULL,
    receipts BIGINT NOT NULL,
    spent NUMERIC NOT NULL,
    computed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (grain, start, category)
);

-- Built from the stored receipts, as `store::rollups::rebuild_all` builds them.
INSERT INTO place_rollups (place_id, grain, start, purchases, total_amount, vat_amount, tips_amount, computed_at)
    SELECT s.key, 'hour', s.start, s.purchases, s.total_amount, s.vat_amount, s.tips_amount, now()
    FROM (SELECT place_id AS key, date_trunc('hour', purchased_at, 'UTC') AS start, COUNT(*)::int8 AS purchases,
           SUM(total_amount) AS total_amount, SUM(vat_amount) AS vat_amount, SUM(tips_amount) AS tips_amount
    FROM receipts GROUP BY 1, 2) s;
INSERT INTO place_category_rollups (place_id, grain, start, category, receipts, spent, computed_at)
    SELECT s.key, 'hour', s.start, s.category, s.receipts, s.spent, now()
    FROM (SELECT r.place_id AS key, date_trunc('hour', r.purchased_at, 'UTC') AS start, l.category,
           COUNT(DISTINCT r.id)::int8 AS receipts, SUM(l.amount) AS spent
    FROM receipts r JOIN receipt_lines l ON l.receipt_id = r.id GROUP BY 1, 2, 3) s;
INSERT INTO place_rollups (place_id, grain, start, purchases, total_amount, vat_amount, tips_amount, computed_at)
    SELECT s.key, 'day', s.start, s.purchases, s.total_amount, s.vat_amount, s.tips_amount, now()
    FROM (SELECT place_id AS key, date_trunc('day', start, 'UTC') AS start, SUM(purchases)::int8 AS purchases, SUM(total_amount) AS total_amount,
                   SUM(vat_amount) AS vat_amount, SUM(tips_amount) AS tips_amount
            FROM place_rollups WHERE grain = 'hour' GROUP BY 1, 2) s;
INSERT INTO place_category_rollups (place_id, grain, start, category, receipts, spent, computed_at)
    SELECT s.key, 'day', s.start, s.category, s.receipts, s.spent, now()
    FROM (SELECT place_id AS key, date_trunc('day', start, 'UTC') AS start, category, SUM(receipts)::int8 AS receipts, SUM(spent) AS spent
            FROM place_category_rollups WHERE grain = 'hour' GROUP BY 1, 2, category) s;
INSERT INTO place_rollups (place_id, grain, start, purchases, total_amount, vat_amount, tips_amount, computed_at)
    SELECT s.key, 'month', s.start, s.purchases, s.total_amount, s.vat_amount, s.tips_amount, now()
    FROM (SELECT place_id AS key, date_trunc('month', start, 'UTC') AS start, SUM(purchases)::int8 AS purchases, SUM(total_amount) AS total_amount,
                   SUM(vat_amount) AS vat_amount, SUM(tips_amount) AS tips_amount
            FROM place_rollups WHERE grain = 'day' GROUP BY 1, 2) s;
INSERT INTO place_category_rollups (place_id, grain, start, category, receipts, spent, computed_at)
    SELECT s.key, 'month', s.start, s.category, s.receipts, s.spent, now()
    FROM (SELECT place_id AS key, date_trunc('month', start, 'UTC') AS start, category, SUM(receipts)::int8 AS receipts, SUM(spent) AS spent
            FROM place_category_rollups WHERE grain = 'day' GROUP BY 1, 2, category) s;
INSERT INTO merchant_rollups (merchant_id, grain, start, purchases, total_amount, vat_amount, tips_amount, computed_at)
    SELECT s.key, 'hour', s.start, s.purchases, s.total_amount, s.vat_amount, s.tips_amount, now()
    FROM (SELECT p.merchant_id AS key, r.start, SUM(r.purchases)::int8 AS purchases,
           SUM(r.total_amount) AS total_amount, SUM(r.vat_amount) AS vat_amount, SUM(r.tips_amount) AS tips_amount
    FROM place_rollups r JOIN places p ON p.place_id = r.place_id WHERE r.grain = 'hour' GROUP BY 1, 2) s;
INSERT INTO merchant_category_rollups (merchant_id, grain, start, category, receipts, spent, computed_at)
    SELECT s.key, 'hour', s.start, s.category, s.receipts, s.spent, now()
    FROM (SELECT p.merchant_id AS key, r.start, r.category, SUM(r.receipts)::int8 AS receipts, SUM(r.spent) AS spent
    FROM place_category_rollups r JOIN places p ON p.place_id = r.place_id WHERE r.grain = 'hour'
    GROUP BY 1, 2, 3) s;
INSERT INTO merchant_rollups (merchant_id, grain, start, purchases, total_amount, vat_amount, tips_amount, computed_at)
    SELECT s.key, 'day', s.start, s.purchases, s.total_amount, s.vat_amount, s.tips_amount, now()
    FROM (SELECT merchant_id AS key, date_trunc('day', start, 'UTC') AS start, SUM(purchases)::int8 AS purchases, SUM(total_amount) AS total_amount,
                   SUM(vat_amount) AS vat_amount, SUM(tips_amount) AS tips_amount
            FROM merchant_rollups WHERE grain = 'hour' GROUP BY 1, 2) s;
INSERT INTO merchant_category_rollups (merchant_id, grain, start, category, receipts, spent, computed_at)
    SELECT s.key, 'day', s.start, s.category, s.receipts, s.spent, now()
    FROM (SELECT merchant_id AS key, date_trunc('day', start, 'UTC') AS start, category, SUM(receipts)::int8 AS receipts, SUM(spent) AS spent
            FROM merchant_category_rollups WHERE grain = 'hour' GROUP BY 1, 2, category) s;
INSERT INTO merchant_rollups (merchant_id, grain, start, purchases, total_amount, vat_amount, tips_amount, computed_at)
    SELECT s.key, 'month', s.start, s.purchases, s.total_amount, s.vat_amount, s.tips_amount, now()
    FROM (SELECT merchant_id AS key, date_trunc('month', start, 'UTC') AS start, SUM(purchases)::int8 AS purchases, SUM(total_amount) AS total_amount,
                   SUM(vat_amount) AS vat_amount, SUM(tips_amount) AS tips_amount
            FROM merchant_rollups WHERE grain = 'day' GROUP BY 1, 2) s;
INSERT INTO merchant_category_rollups (merchant_id, grain, start, category, receipts, spent, computed_at)
    SELECT s.key, 'month', s.start, s.category, s.receipts, s.spent, now()
    FROM (SELECT merchant_id AS key, date_trunc('month', start, 'UTC') AS start, category, SUM(receipts)::int8 AS receipts, SUM(spent) AS spent
            FROM merchant_category_rollups WHERE grain = 'day' GROUP BY 1, 2, category) s;
INSERT INTO total_rollups (grain, start, purchases, total_amount, vat_amount, tips_amount, computed_at)
    SELECT 'hour', s.start, s.purchases, s.total_amount, s.vat_amount, s.tips_amount, now()
    FROM (SELECT start, SUM(purchases)::int8 AS purchases, SUM(total_amount) AS total_amount,
           SUM(vat_amount) AS vat_amount, SUM(tips_amount) AS tips_amount
    FROM place_rollups WHERE grain = 'hour' GROUP BY 1) s;
INSERT INTO total_category_rollups (grain, start, category, receipts, spent, computed_at)
    SELECT 'hour', s.start, s.category, s.receipts, s.spent, now()
    FROM (SELECT start, category, SUM(receipts)::int8 AS receipts, SUM(spent) AS spent
    FROM place_category_rollups WHERE grain = 'hour' GROUP BY 1, 2) s;
INSERT INTO total_rollups (grain, start, purchases, total_amount, vat_amount, tips_amount, computed_at)
    SELECT 'day', s.start, s.purchases, s.total_amount, s.vat_amount, s.tips_amount, now()
    FROM (SELECT date_trunc('day', start, 'UTC') AS start, SUM(purchases)::int8 AS purchases, SUM(total_amount) AS total_amount,
                   SUM(vat_amount) AS vat_amount, SUM(tips_amount) AS tips_amount
            FROM total_rollups WHERE grain = 'hour' GROUP BY 1) s;
INSERT INTO total_category_rollups (grain, start, category, receipts, spent, computed_at)
    SELECT 'day', s.start, s.category, s.receipts, s.spent, now()
    FROM (SELECT date_trunc('day', start, 'UTC') AS start, category, SUM(receipts)::int8 AS receipts, SUM(spent) AS spent
            FROM total_category_rollups WHERE grain = 'hour' GROUP BY 1, category) s;
INSERT INTO total_rollups (grain, start, purchases, total_amount, vat_amount, tips_amount, computed_at)
    SELECT 'month', s.start, s.purchases, s.total_amount, s.vat_amount, s.tips_amount, now()
    FROM (SELECT date_trunc('month', start, 'UTC') AS start, SUM(purchases)::int8 AS purchases, SUM(total_amount) AS total_amount,
                   SUM(vat_amount) AS vat_amount, SUM(tips_amount) AS tips_amount
            FROM total_rollups WHERE grain = 'day' GROUP BY 1) s;
INSERT INTO total_category_rollups (grain, start, category, receipts, spent, computed_at)
    SELECT 'month', s.start, s.category, s.receipts, s.spent, now()
    FROM (SELECT date_trunc('month', start, 'UTC') AS start, category, SUM(receipts)::int8 AS receipts, SUM(spent) AS spent
            FROM total_category_rollups WHERE grain = 'day' GROUP BY 1, category) s;
DROP TABLE place_hour_rollups;
DROP TABLE category_hour_rollups;
