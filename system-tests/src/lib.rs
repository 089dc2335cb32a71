//! Tests across the services. [`services`] starts the producer, the consumer and a worker in the test's own
//! process (configured by [`config`]), for the API, OpenAPI, fuzz and end-to-end tests. [`stack`] starts
//! PostgreSQL, Redis, the broker and the three binaries as real processes on free local ports, for the fault
//! suite; [`load`] drives the producer with a steady stream of receipts, retrying each until it is taken, as a
//! careful client does; [`topic`] writes receipts straight to the topic; [`bench`] holds what the benchmarks share, and [`chart`] draws their charts; [`loadgen`] generates realistic load and measures it (the `loadgen` binary and the
//! intake benchmark); [`check`] waits until every accepted receipt is stored once and counted once; [`episodes`] lines up a
//! fixed-rate run's slow seconds with what PostgreSQL logged.

pub mod bench;
pub mod chart;
pub mod check;
pub mod config;
pub mod episodes;
pub mod load;
pub mod loadgen;
pub mod services;
pub mod stack;
pub mod topic;
