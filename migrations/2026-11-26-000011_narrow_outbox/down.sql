ALTER TABLE outbox ADD COLUMN payload TEXT;

UPDATE outbox o SET payload = json_build_object(
        'schema_version', 1,
        'merchant_id', a.merchant_id,
        'received_at', to_char(a.received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'receipt', a.receipt)::text
FROM accepted_receipts a
WHERE a.merchant_id = o.merchant_id AND a.transaction_id = o.transaction_id;

ALTER TABLE outbox ALTER COLUMN payload SET NOT NULL;
