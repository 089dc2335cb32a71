//! `loadgen`: drives a running producer with realistic receipts at a fixed rate or flat out, shows progress,
//! and prints a report (accepted/s, latency percentiles, answers by status, end-to-end freshness).
//!
//! `cargo run --release -p system-tests --bin loadgen -- --token $ADMIN_TOKEN --rate 1000 --seconds 60`

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use system_tests::loadgen::receipts::Mix;
use system_tests::loadgen::{self, Counters, Plan};

#[derive(Debug, Parser)]
#[command(about = "Drive the producer with realistic receipts and report throughput, latency and freshness")]
struct Args {
    /// The producer's base URL.
    #[arg(long, env = "LOADGEN_PRODUCER_URL", default_value = "http://127.0.0.1:8000")]
    producer: String,
    /// The consumer's base URL, for freshness ("" to skip it).
    #[arg(long, env = "LOADGEN_CONSUMER_URL", default_value = "http://127.0.0.1:8001")]
    consumer: String,
    /// An admin token (`make up` prints one).
    #[arg(long, env = "LOADGEN_TOKEN", hide_env_values = true)]
    token: String,
    /// Receipts a second; 0 sends flat out.
    #[arg(long, env = "LOADGEN_RATE", default_value_t = 0.0)]
    rate: f64,
    /// How long to run, in seconds.
    #[arg(long, env = "LOADGEN_SECONDS", default_value_t = 30)]
    seconds: u64,
    /// Flat out: concurrent connections. At a fixed rate: senders sharing the rate, each sending its receipts
    /// when they are due, answered or not.
    #[arg(long, env = "LOADGEN_CONNECTIONS", default_value_t = 32)]
    connections: usize,
    /// At a fixed rate, the most requests unanswered at once.
    #[arg(long, env = "LOADGEN_MAX_IN_FLIGHT", default_value_t = 1024)]
    max_in_flight: usize,
    #[arg(long, env = "LOADGEN_MERCHANTS", default_value_t = 20)]
    merchants: usize,
    #[arg(long, env = "LOADGEN_PLACES", default_value_t = 100)]
    places: usize,
    /// Share of submissions that repeat an earlier receipt (answered 200).
    #[arg(long, env = "LOADGEN_REPEATS", default_value_t = 0.02)]
    repeats: f64,
    /// Share of submissions that are invalid (answered 422).
    #[arg(long, env = "LOADGEN_INVALID", default_value_t = 0.01)]
    invalid: f64,
    /// Also write each second's throughput and latency to this CSV file.
    #[arg(long, env = "LOADGEN_TIMELINE")]
    timeline: Option<PathBuf>,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let plan = Plan {
        producer: args.producer.trim_end_matches('/').to_owned(),
        consumer: Some(args.consumer.trim_end_matches('/').to_owned()).filter(|url| !url.is_empty()),
        token: args.token,
        connections: args.connections,
        rate: Some(args.rate).filter(|rate| *rate > 0.0),
        max_in_flight: args.max_in_flight,
        duration: Duration::from_secs(args.seconds),
        mix: Mix {
            merchants: args.merchants,
            places: args.places,
            repeats: args.repeats,
            invalid: args.invalid,
        },
        run: format!("load-{}", chrono::Utc::now().format("%Y%m%dT%H%M%S")),
    };
    let counters = Arc::new(Counters::default());
    let bar = ProgressBar::new(args.seconds);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} s  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let started_at = chrono::Utc::now();
    let run = tokio::spawn(loadgen::run(plan, counters.clone()));
    let started = std::time::Instant::now();
    while !run.is_finished() {
        let elapsed = started.elapsed().as_secs_f64().max(0.001);
        let accepted = counters.accepted.load(Ordering::Relaxed);
        bar.set_position(elapsed as u64);
        bar.set_message(format!(
            "{} answered, {} accepted, {:.0}/s",
            counters.answered.load(Ordering::Relaxed),
            accepted,
            accepted as f64 / elapsed
        ));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bar.finish_and_clear();
    match run.await {
        Ok(report) => {
            println!("{report}");
            if let Some(path) = &args.timeline {
                if let Err(error) = std::fs::write(path, report.timeline(started_at)) {
                    eprintln!("loadgen could not write {}: {error}", path.display());
                    std::process::exit(1);
                }
            }
        }
        Err(error) => {
            eprintln!("loadgen failed: {error}");
            std::process::exit(1);
        }
    }
}
