-- The consumer stored a copy of each receipt's document (`raw`) that nothing reads. The same document, extra
-- fields included, is kept once in `accepted_receipts.receipt`, written by intake in the same database
-- (decisions.md, "One PostgreSQL database for both services"); the consumer keeps what it answers from: the
-- receipt's columns and its lines. The copy was about 1 KB of every receipt's row and of its write-ahead
-- log, which intake's commits flush along with their own (decisions.md, "The receipt's document is kept
-- once").
ALTER TABLE receipts DROP COLUMN raw;
