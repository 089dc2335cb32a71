//! Tests of the whole pipeline as real processes. [`stack`] starts PostgreSQL, Redis, the broker and the three
//! binaries on free local ports; [`load`] drives the producer with a steady stream of receipts, retrying each
//! until it is taken, as a careful client does; [`check`] waits until every accepted receipt is stored once
//! and counted once.

pub mod check;
pub mod load;
pub mod stack;
