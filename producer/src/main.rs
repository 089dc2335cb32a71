use std::process::ExitCode;
use std::str::FromStr;

use clap::{Parser, Subcommand};
use producer::config::ProducerConfig;
use producer::error::ProducerError;
use producer::startup::Application;
use shared_models::config::{load_dotenv, DatabaseConfig};
use shared_models::domain::auth::Role;
use shared_models::store;
use shared_models::store::tokens;
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

fn run_token_command(database: &DatabaseConfig, action: TokenAction) -> Result<(), ProducerError> {
    let pool = store::build_pool(&database.database_url, 1);
    store::run_migrations(&pool)?;
    let mut conn = pool.get()?;
    match action {
        TokenAction::Create {
            role,
            merchant_id,
            name,
        } => {
            let role = Role::from_str(&role)?;
            let (record, secret) =
                tokens::create_token(&mut conn, role, merchant_id.as_deref(), name.as_deref())?;
            println!("id:    {}\nrole:  {}\ntoken: {secret}", record.id, record.role);
        }
        TokenAction::List => {
            for token in tokens::list_tokens(&mut conn)? {
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
            if !tokens::revoke_token(&mut conn, id)? {
                return Err(ProducerError::NoSuchToken(id));
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
            let pool = store::build_pool(&cli.config.database.database_url, 1);
            store::run_migrations(&pool)
                .map_err(ProducerError::from)
                .and_then(|()| producer::relay::replay_unconsumed(&pool))
                .map(|count| println!("{count} receipts queued for publication again"))
        }
        Command::Migrate => store::run_migrations(&store::build_pool(&cli.config.database.database_url, 1))
            .map_err(ProducerError::from),
        Command::Serve => actix_web::rt::System::new().block_on(async move {
            let app = Application::build(cli.config).await?;
            log::info!("producer listening on port {}", app.port());
            app.run_until_stopped().await
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let error = shared_models::report::chain(&error);
            log::error!("{error}");
            eprintln!("producer: {error}");
            ExitCode::FAILURE
        }
    }
}
