use std::process::ExitCode;

use clap::Parser;
use consumer::config::ConsumerConfig;
use consumer::startup::Application;
use shared_models::config::load_dotenv;

/// Reads receipts from Kafka, stores them idempotently and serves places and analytics.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    config: ConsumerConfig,
}

fn main() -> ExitCode {
    load_dotenv();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let result = actix_web::rt::System::new().block_on(async move {
        let app = Application::build(cli.config).await?;
        log::info!("consumer listening on port {}", app.port());
        app.run_until_stopped().await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let error = shared_models::report::chain(&error);
            log::error!("{error}");
            eprintln!("consumer: {error}");
            ExitCode::FAILURE
        }
    }
}
