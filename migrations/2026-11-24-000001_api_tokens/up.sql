-- API tokens: opaque secrets are never stored, only their SHA-256 digest.
CREATE TABLE api_tokens (
    id UUID PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('merchant', 'analyst', 'admin')),
    merchant_id TEXT,
    name TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at TIMESTAMPTZ,
    CHECK ((role = 'merchant') = (merchant_id IS NOT NULL))
);
