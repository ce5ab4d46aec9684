//! Log output: JSON lines for collectors, or pretty for a terminal; filtered by `IDENTSPHERE_LOG`.

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, Logging};

/// Installs the global subscriber.
///
/// # Errors
/// When the filter does not parse or a subscriber is already installed.
pub fn init(logging: &Logging) -> anyhow::Result<()> {
    let filter =
        EnvFilter::try_new(&logging.filter).map_err(|e| anyhow::anyhow!("IDENTSPHERE_LOG: not a valid filter: {e}"))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let installed = match logging.format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("installing the log subscriber: {e}"))
}
