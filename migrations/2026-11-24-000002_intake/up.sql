-- Places are registered at intake so that ownership is decided atomically with acceptance:
-- a place belongs to the merchant whose receipt first named it.
CREATE TABLE places (
    place_id TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL,
    place_name TEXT,
    total_purchases BIGINT NOT NULL DEFAULT 0,
    first_purchase_at TIMESTAMPTZ,
    last_purchase_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX places_merchant ON places (merchant_id);

-- One row per receipt the producer accepted: the idempotency record and its publication state.
CREATE TABLE accepted_receipts (
    merchant_id TEXT NOT NULL,
    transaction_id TEXT NOT NULL,
    place_id TEXT NOT NULL REFERENCES places (place_id),
    content_hash TEXT NOT NULL,
    receipt JSONB NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    published_at TIMESTAMPTZ,
    PRIMARY KEY (merchant_id, transaction_id)
);

-- The receipt log (SPEC 1.1.3): every submission attempt, whatever its outcome.
CREATE TABLE receipt_log (
    id BIGSERIAL PRIMARY KEY,
    merchant_id TEXT,
    transaction_id TEXT,
    outcome TEXT NOT NULL CHECK (outcome IN ('accepted', 'duplicate', 'conflict', 'rejected')),
    reasons JSONB,
    rejected_body TEXT,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX receipt_log_transaction ON receipt_log (merchant_id, transaction_id);
CREATE INDEX receipt_log_received ON receipt_log (received_at);

-- Transactional outbox: written with the accepted receipt, drained by the relay after the broker acknowledges.
CREATE TABLE outbox (
    id BIGSERIAL PRIMARY KEY,
    merchant_id TEXT NOT NULL,
    transaction_id TEXT NOT NULL,
    message_key TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at TIMESTAMPTZ,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX outbox_pending ON outbox (id) WHERE published_at IS NULL;
