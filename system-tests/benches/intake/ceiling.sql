-- The ceiling of one-transaction-per-receipt intake on this PostgreSQL (pgbench, `make bench`): what a
-- producer that commits each receipt on its own could reach at best. Per transaction: the raw receipt into a
-- log table with a unique (merchant, transaction_id) key, an outbox row, and the commit.
\set merchant random(1, 100)
\set sequence random(1, 1000000000000)
BEGIN;
INSERT INTO ceiling_receipts (merchant_id, transaction_id, body)
VALUES ('merchant-' || :merchant, :client_id || '-' || :sequence,
        '{"transaction_id": "tx", "timestamp": "2026-11-02T09:41:07Z", "place_id": "place-1", "place_name": "Shop 1", "items": [{"product_id": "espresso", "quantity": 2, "price": 2.50, "category": "coffee"}, {"product_id": "beans-kg", "quantity": 0.255, "price": 24.00, "category": "groceries"}, {"product_id": "croissant", "quantity": 1, "price": 1.90, "category": "bakery"}], "total_amount": 13.02, "vat_amount": 1.18, "tips_amount": 1.00, "payment_method": "credit_card"}')
ON CONFLICT DO NOTHING;
INSERT INTO ceiling_outbox (merchant_id, transaction_id, payload)
VALUES ('merchant-' || :merchant, :client_id || '-' || :sequence, 'a receipt envelope of about the same size as the body above, as the outbox holds it for the relay; a receipt envelope of about the same size as the body above, as the outbox holds it for the relay; a receipt envelope of about the same size as the body above, as the outbox holds it for the relay; a receipt envelope of about the same size as the body above, as the outbox holds it for the relay; a receipt envelope of about the same size');
END;
