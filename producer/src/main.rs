use std::process::ExitCode;
use std::str::FromStr;

use clap::{Parser, Subcommand};
use producer::config::ProducerConfig;
use producer::startup::Application;
use shared_models::auth::{self, Role};
use shared_models::config::{load_dotenv, DatabaseConfig};
use shared_models::db;
use uuid::Uuid;

/// Receipt intake API: validates receipts, logs every attempt and relays accepted ones to Kafka.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    config: ProducerConfig,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API and run the outbox relay (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage API tokens.
    Tokens {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Operate the transactional outbox.
    Outbox {
        #[command(subcommand)]
        action: OutboxAction,
    },
}

#[derive(Debug, Subcommand)]
enum OutboxAction {
    /// Publish again every receipt the consumer has not stored (after a broker lost its messages).
    ReplayUnconsumed,
}

#[derive(Debug, Subcommand)]
enum TokenAction {
    /// Create a token and print it (the only time it is shown).
    Create {
        /// merchant, analyst or admin.
        #[arg(long)]
        role: String,
        /// The merchant a merchant token belongs to.
        #[arg(long)]
        merchant_id: Option<String>,
        /// A label to recognise the token by.
        #[arg(long)]
        name: Option<String>,
    },
    /// List tokens (without secrets).
    List,
    /// Revoke a token by id.
    Revoke { id: Uuid },
}

fn run_token_command(database: &DatabaseConfig, action: TokenAction) -> Result<(), String> {
    let pool = db::build_pool(&database.database_url, 1);
    db::run_migrations(&pool).map_err(|error| error.to_string())?;
    let mut conn = pool.get().map_err(|error| error.to_string())?;
    match action {
        TokenAction::Create {
            role,
            merchant_id,
            name,
        } => {
            let role = Role::from_str(&role).map_err(|error| error.to_string())?;
            let (record, secret) =
                auth::create_token(&mut conn, role, merchant_id.as_deref(), name.as_deref())
                    .map_err(|error| error.to_string())?;
            println!("id:    {}\nrole:  {}\ntoken: {secret}", record.id, record.role);
        }
        TokenAction::List => {
            for token in auth::list_tokens(&mut conn).map_err(|error| error.to_string())? {
                let revoked = token
                    .revoked_at
                    .map(|at| format!("revoked {at}"))
                    .unwrap_or_else(|| "active".into());
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    token.id,
                    token.role,
                    token.merchant_id.unwrap_or_else(|| "-".into()),
                    token.name.unwrap_or_else(|| "-".into()),
                    revoked
                );
            }
        }
        TokenAction::Revoke { id } => {
            if !auth::revoke_token(&mut conn, id).map_err(|error| error.to_string())? {
                return Err(format!("no token {id}"));
            }
            println!("revoked {id}");
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    load_dotenv();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Tokens { action } => run_token_command(&cli.config.database, action),
        Command::Outbox {
            action: OutboxAction::ReplayUnconsumed,
        } => {
            let pool = db::build_pool(&cli.config.database.database_url, 1);
            db::run_migrations(&pool)
                .map_err(|error| error.to_string())
                .and_then(|()| producer::relay::replay_unconsumed(&pool).map_err(|error| error.to_string()))
                .map(|count| println!("{count} receipts queued for publication again"))
        }
        Command::Migrate => db::run_migrations(&db::build_pool(&cli.config.database.database_url, 1))
            .map_err(|error| error.to_string()),
        Command::Serve => actix_web::rt::System::new().block_on(async move {
            let app = Application::build(cli.config)
                .await
                .map_err(|error| error.to_string())?;
            log::info!("producer listening on port {}", app.port());
            app.run_until_stopped().await.map_err(|error| error.to_string())
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            log::error!("{error}");
            eprintln!("producer: {error}");
            ExitCode::FAILURE
        }
    }
}
