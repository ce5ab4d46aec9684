//! The `identsphere` command: `serve` (the default), `migrate`, `keys rotate` or `admin create-key`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use identsphere::app::Application;
use identsphere::clock::Clock;
use identsphere::config::{self, Config, Logging, MigrationTarget};

#[derive(Debug, Parser)]
#[command(name = "identsphere", version, about = "Multi-tenant authentication service (REST + JSON, RS256 JWTs).")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply migrations and serve the API (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage the signing and refresh-token keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Administration from the command line.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Create an API key and print it (shown this once; stored hashed): a platform key, which acts as an
    /// owner of every organization, or with --organization one organization's key.
    CreateKey {
        /// The organization (id or slug) the key acts for; without it, a platform key.
        #[arg(long)]
        organization: Option<String>,
        /// What the key is for.
        #[arg(long, default_value = "created on the command line")]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Emergency rotation: a new signing key and a new refresh-token MAC key take over from now; every
    /// other key is retired at once, so the access and refresh tokens made with them stop verifying.
    /// Prints the new signing key's id. Running servers switch within IDENTSPHERE_KEY_CHECK_INTERVAL.
    Rotate,
}

/// One line on stderr and a non-zero exit: configuration errors never print a trace.
fn config_failure(err: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("identsphere: configuration error: {err}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let command = Cli::parse().command.unwrap_or(Command::Serve);
    let logging = match Logging::from_lookup(&config::env) {
        Ok(logging) => logging,
        Err(err) => return config_failure(&err),
    };
    let result = match command {
        Command::Serve => match Config::from_env() {
            Ok(config) => run(&logging, async move {
                let clock = Clock::shifted(config.clock_offset);
                Application::build(config, clock).await?.serve_until_signalled().await
            }),
            Err(err) => return config_failure(&err),
        },
        Command::Keys { command: KeysCommand::Rotate } => match Config::from_env() {
            Ok(config) => run(&logging, async move {
                let kid = identsphere::app::cli::rotate_keys(&config, &Clock::system()).await?;
                println!("{kid}");
                Ok(())
            }),
            Err(err) => return config_failure(&err),
        },
        Command::Admin { command: AdminCommand::CreateKey { organization, name } } => match Config::from_env() {
            Ok(config) => run(&logging, async move {
                let clock = Clock::system();
                let key = identsphere::app::cli::create_api_key(&config, &clock, organization.as_deref(), name).await?;
                println!("{key}");
                Ok(())
            }),
            Err(err) => return config_failure(&err),
        },
        Command::Migrate => match config::migration_target(&config::env) {
            Ok(MigrationTarget::Postgres(url)) => {
                run(&logging, async move { identsphere::store::postgres::migrate(&url).await })
            }
            Ok(MigrationTarget::Embedded(dir)) => {
                run(&logging, async move { identsphere::store::embedded::SqliteStore::open(&dir).map(drop) })
            }
            Err(err) => return config_failure(&err),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %format!("{err:#}"), "identsphere stopped");
            eprintln!("identsphere: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(logging: &Logging, work: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    identsphere::telemetry::init(logging)?;
    actix_web::rt::System::new().block_on(work)
}
