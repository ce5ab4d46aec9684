//! The `identsphere` command: `serve` (the default) or `migrate`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use identsphere::clock::Clock;
use identsphere::config::Config;
use identsphere::startup::Application;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("identsphere: configuration error: {err}");
            return ExitCode::from(2);
        }
    };
    if let Err(err) = identsphere::telemetry::init(&config) {
        eprintln!("identsphere: {err}");
        return ExitCode::from(2);
    }
    let result = actix_web::rt::System::new().block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => {
                Application::build(config, Clock::system()).await?.run_until_stopped().await.map_err(Into::into)
            }
            Command::Migrate => identsphere::store::postgres::migrate(&config.database_url).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %format!("{err:#}"), "identsphere stopped");
            eprintln!("identsphere: {err:#}");
            ExitCode::FAILURE
        }
    }
}
