//! The worker fleet (Celery's role): runs analytics recompute jobs from the Redis queue and, in every
//! replica, the hourly cron that enqueues one reconcile per slot.

pub mod config;
pub mod error;
pub mod jobs;
pub mod metrics;
pub mod run;
