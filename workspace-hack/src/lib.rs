//! This crate unifies the features of the workspace's dependencies so that every member builds them once.
//! It is managed by `cargo hakari`; see `.config/hakari.toml`.
