use std::process::ExitCode;

use clap::Parser;
use shared_models::config::load_dotenv;
use tokio::sync::watch;
use worker::config::WorkerConfig;

/// Runs analytics recompute jobs from the Redis queue and the hourly reconcile cron. Start as many
/// replicas as you like: each hourly slot still runs once.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    config: WorkerConfig,
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

fn main() -> ExitCode {
    load_dotenv();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("worker: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(async move {
            wait_for_signal().await;
            log::info!("stopping: finishing running jobs");
            let _ = stop.send(true);
        });
        worker::run::run(cli.config, stopped).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let error = shared_models::report::chain(&error);
            log::error!("{error}");
            eprintln!("worker: {error}");
            ExitCode::FAILURE
        }
    }
}
