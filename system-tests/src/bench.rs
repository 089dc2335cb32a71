//! What the benchmarks (`benches/`, run by `make bench`) share: whether to measure at all, their settings,
//! their runtime, the median of their rounds, and where their reports go.

use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Whether this run measures: `cargo test --all-targets` runs bench targets too, without `--bench`, and there
/// is nothing to measure then.
pub fn requested(name: &str) -> bool {
    let requested = std::env::args().any(|argument| argument == "--bench");
    if !requested {
        println!("the {name} benchmark runs under `make bench`");
    }
    requested
}

/// A setting from the environment (docs/configuration.md lists them), or `default`.
pub fn setting<T: FromStr>(variable: &str, default: T) -> T {
    std::env::var(variable)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// The runtime a benchmark drives its stack and its load from.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// The middle value of the rounds (the upper one of an even count).
pub fn median(mut rounds: Vec<f64>) -> f64 {
    rounds.sort_by(f64::total_cmp);
    rounds[rounds.len() / 2]
}

/// Writes one file of a benchmark's report to `target/bench/`, where `scripts/bench.sh` gathers the run's
/// report.
pub fn write_report(file: &str, contents: &str) {
    std::fs::write(report_path(file), contents).unwrap_or_else(|error| panic!("write {file}: {error}"));
}

/// Draws a chart named `file` into `target/bench/` with `draw`; returns, for the report, a line saying why it
/// was not drawn, or nothing when it was (a chart that cannot be drawn fails no benchmark).
pub fn write_chart(file: &str, draw: impl FnOnce(&Path) -> Result<(), String>) -> String {
    match draw(&report_path(file)) {
        Ok(()) => String::new(),
        Err(error) => format!("\nThe chart {file} was not drawn: {error}.\n"),
    }
}

/// Where a benchmark's report or chart named `file` goes (`target/bench/`, made if missing).
fn report_path(file: &str) -> PathBuf {
    let directory = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    std::fs::create_dir_all(&directory).expect("target/bench");
    directory.join(file)
}
