-- What the consumer's recompute jobs have already checked of each place hour, so that the next check of the
-- hour reads only the receipts stored since: the hour's figures over its receipts stored before
-- `checked_through`, a time before which every receipt of the hour had been committed when it was checked.
-- A check finds the hour's rollup equal to these figures plus its receipts stored since, or recomputes it.
CREATE TABLE checked_place_hours (
    place_id TEXT NOT NULL,
    start TIMESTAMPTZ NOT NULL,
    checked_through TIMESTAMPTZ NOT NULL,
    purchases BIGINT NOT NULL,
    total_amount NUMERIC NOT NULL,
    vat_amount NUMERIC NOT NULL,
    tips_amount NUMERIC NOT NULL,
    PRIMARY KEY (place_id, start)
);

CREATE TABLE checked_place_hour_categories (
    place_id TEXT NOT NULL,
    start TIMESTAMPTZ NOT NULL,
    category TEXT NOT NULL,
    receipts BIGINT NOT NULL,
    spent NUMERIC NOT NULL,
    PRIMARY KEY (place_id, start, category)
);

-- A place's receipts stored since a time: what a check of one of its hours reads.
CREATE INDEX receipts_place_stored ON receipts (place_id, stored_at);
