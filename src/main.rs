//! The `identsphere` command: `serve` (the default), `migrate`, `keys rotate`, `admin create-key` or
//! `import users`.

use std::process::ExitCode;

use anyhow::Context as _;
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
    /// Bring users in from another system (docs/migration.md).
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ImportCommand {
    /// Import users from an NDJSON file (`-` for standard input) into an organization, as
    /// `POST /v1/organizations/{org}/users/import` does for the platform, with no size limit; prints one
    /// result a line, and a summary on standard error. Beside running servers on Postgres; with the embedded
    /// store, only while no server runs on it.
    Users {
        /// The organization (id or slug).
        #[arg(long)]
        organization: String,
        /// A Firebase project's hash parameters: `signer_key=…, salt_separator=…, rounds=8, mem_cost=14`.
        #[arg(long)]
        firebase_scrypt: Option<String>,
        /// The NDJSON file, one user a line.
        file: std::path::PathBuf,
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
        Command::Import { command: ImportCommand::Users { organization, firebase_scrypt, file } } => {
            match Config::from_env() {
                Ok(config) => run(&logging, async move {
                    let input: Box<dyn std::io::Read> = if file.as_os_str() == "-" {
                        Box::new(std::io::stdin())
                    } else {
                        Box::new(std::fs::File::open(&file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?)
                    };
                    let clock = Clock::system();
                    let stdout = std::io::stdout().lock();
                    let summary = identsphere::app::cli::import_users(
                        &config,
                        &clock,
                        &organization,
                        firebase_scrypt.as_deref(),
                        input,
                        stdout,
                    )
                    .await?;
                    eprintln!(
                        "identsphere: imported into {organization}: {} created, {} existing, {} invalid",
                        summary.created, summary.exists, summary.invalid
                    );
                    if summary.failed {
                        anyhow::bail!("the import stopped early: the last result says from which line to run it again");
                    }
                    Ok(())
                }),
                Err(err) => return config_failure(&err),
            }
        }
        Command::Migrate => match config::migration_target(&config::env) {
            Ok(MigrationTarget::Postgres(database)) => run(&logging, async move {
                let variables = identsphere::store::tls::postgres_variables(&database);
                identsphere::store::postgres::migrate(&database).await.with_context(|| format!("migrating {variables}"))
            }),
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
