-- When Kafka acknowledged each accepted receipt, kept beside the accepted record instead of in it. Marking a
-- row of `accepted_receipts` published wrote a second copy of the whole row, receipt included (about 1 KB of
-- write-ahead log per receipt), and left a dead one behind for autovacuum to clear: under sustained intake its
-- pass over the table took 10-12 s of every minute. `accepted_receipts` is now only ever inserted into.
-- No foreign key to `accepted_receipts`: checking one would lock the accepted row, which writes to it again.
CREATE TABLE receipt_publications (
    merchant_id TEXT NOT NULL,
    transaction_id TEXT NOT NULL,
    published_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (merchant_id, transaction_id)
);

INSERT INTO receipt_publications (merchant_id, transaction_id, published_at)
SELECT merchant_id, transaction_id, published_at FROM accepted_receipts WHERE published_at IS NOT NULL;

ALTER TABLE accepted_receipts DROP COLUMN published_at;
