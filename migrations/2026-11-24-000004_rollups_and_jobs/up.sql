-- Hourly rollups: exact sums per place and hour, and per place, hour and category.
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

-- Recompute jobs as admins see them; the queue itself lives in Redis.
CREATE TABLE jobs (
    id UUID PRIMARY KEY,
    kind TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'retrying', 'done', 'failed')),
    payload JSONB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ
);
CREATE INDEX jobs_status ON jobs (status, created_at);

-- One row per hourly cron slot, so that "exactly once per slot" can be checked.
CREATE TABLE hourly_runs (
    slot TIMESTAMPTZ PRIMARY KEY,
    runs INTEGER NOT NULL DEFAULT 0,
    buckets BIGINT NOT NULL DEFAULT 0,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ
);
