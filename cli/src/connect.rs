//! From `--connect` / `ZK_CONNECT` / `--config` to a running warden.

use std::path::Path;
use std::time::Duration;

use zkwarden::{Warden, WardenConfig};

use crate::args::Global;
use crate::exit::Failure;

/// The connection timeout when neither `--timeout` nor a config file sets one: a command
/// line should fail within seconds when nothing answers.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads and validates a warden config file (JSON when its name ends in `.json`, TOML
/// otherwise; `ZK_CONNECT`, when set, names the servers), with
/// [`WardenConfig::from_file`].
///
/// # Errors
/// [`Failure::Usage`] naming the file when it cannot be read, parsed or validated.
pub fn load_config(path: &Path) -> Result<WardenConfig, Failure> {
    WardenConfig::from_file(path).map_err(|e| Failure::Usage(e.to_string()))
}

/// The warden config the global options describe.
///
/// # Errors
/// [`Failure::Usage`] when no servers are given, or for a bad config file or setting.
pub fn config(global: &Global) -> Result<WardenConfig, Failure> {
    let mut config = match (&global.config, &global.connect) {
        (Some(file), connect) => {
            let mut config = load_config(file)?;
            if let Some(connect) = connect {
                config.connect = connect.clone();
            }
            config
        }
        (None, Some(connect)) => {
            let mut config = WardenConfig::new(connect.clone());
            config.connection_timeout = DEFAULT_TIMEOUT;
            config
        }
        (None, None) => {
            return Err(Failure::Usage(
                "no servers: give --connect HOST:PORT, set ZK_CONNECT, or give --config FILE"
                    .into(),
            ));
        }
    };
    if let Some(timeout) = global.timeout {
        config.connection_timeout = timeout;
    }
    if let Some(timeout) = global.session_timeout {
        config.session_timeout = timeout;
    }
    config
        .validate()
        .map_err(|e| Failure::Usage(format!("invalid settings: {e}")))?;
    Ok(config)
}

/// Starts a warden with the global options' settings.
///
/// # Errors
/// As [`config`]; [`Failure::Zk`] when no session could be made.
pub async fn warden(global: &Global) -> Result<Warden, Failure> {
    let config = config(global)?;
    let servers = config.connect.clone();
    Warden::start(config)
        .await
        .map_err(|e| Failure::zk(format!("connecting to {servers}"), e))
}
