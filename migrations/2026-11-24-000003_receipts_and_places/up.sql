-- Receipts as stored by the consumer, idempotent on (merchant_id, transaction_id).
CREATE TABLE receipts (
    id BIGSERIAL PRIMARY KEY,
    merchant_id TEXT NOT NULL,
    transaction_id TEXT NOT NULL,
    place_id TEXT NOT NULL REFERENCES places (place_id),
    purchased_at TIMESTAMPTZ NOT NULL,
    total_amount NUMERIC NOT NULL,
    vat_amount NUMERIC NOT NULL,
    tips_amount NUMERIC NOT NULL,
    payment_method TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    stored_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    raw JSONB NOT NULL,
    UNIQUE (merchant_id, transaction_id)
);
CREATE INDEX receipts_place_purchased ON receipts (place_id, purchased_at);
CREATE INDEX receipts_purchased ON receipts (purchased_at);
CREATE INDEX receipts_stored ON receipts (stored_at);

CREATE TABLE receipt_lines (
    receipt_id BIGINT NOT NULL REFERENCES receipts (id) ON DELETE CASCADE,
    line_no INTEGER NOT NULL,
    product_id TEXT NOT NULL,
    category TEXT NOT NULL,
    quantity NUMERIC NOT NULL,
    price NUMERIC NOT NULL,
    amount NUMERIC NOT NULL,
    PRIMARY KEY (receipt_id, line_no)
);
