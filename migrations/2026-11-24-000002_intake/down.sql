DROP TABLE outbox; DROP TABLE receipt_log; DROP TABLE accepted_receipts; DROP TABLE places;
