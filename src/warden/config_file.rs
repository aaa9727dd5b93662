//! Loading a [`WardenConfig`] from TOML or JSON text or a file, with the servers taken from the
//! environment when the deployment says so.
//!
//! One config file should serve every environment a service runs in: the retry policy, the
//! timeouts and the namespace are the service's, the servers are the environment's. So
//! `connect` may be left out of the file, and `ZK_CONNECT`, when set, names the servers
//! (it wins over the file, as an environment variable does for most twelve-factor settings).

use std::path::Path;

use super::config::WardenConfig;
use crate::error::{Error, Result};

/// The environment variable that names the servers (`host:port,host:port`).
pub const CONNECT_ENV: &str = "ZK_CONNECT";

/// The text formats a config can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Toml,
    Json,
}

impl WardenConfig {
    /// Reads a config from TOML text; `connect` may be left out when `ZK_CONNECT` is set, and
    /// `ZK_CONNECT` wins over it when both are there.
    ///
    /// ```
    /// # // No ZK_CONNECT in a doc test's environment is assumed: the file names the servers.
    /// let config = zkwarden::WardenConfig::from_toml_str(r#"
    ///     connect = "zk1:2181,zk2:2181"
    ///     session_timeout = "10s"
    ///     retry = { kind = "exponential", base = "100ms", max_retries = 10, max_sleep = "30s" }
    /// "#)?;
    /// assert_eq!(config.session_timeout, std::time::Duration::from_secs(10));
    /// # Ok::<(), zkwarden::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the problem when the text is not valid TOML, has an
    /// unknown or mistyped field, or names no servers; the errors of
    /// [`validate`](WardenConfig::validate) for values out of range.
    pub fn from_toml_str(text: &str) -> Result<WardenConfig> {
        parse(text, Format::Toml, "TOML config", env_connect().as_deref())
    }

    /// Reads a config from JSON text; see [`from_toml_str`](WardenConfig::from_toml_str) for
    /// `connect` and `ZK_CONNECT`.
    ///
    /// # Errors
    /// As [`from_toml_str`](WardenConfig::from_toml_str), for JSON.
    pub fn from_json_str(text: &str) -> Result<WardenConfig> {
        parse(text, Format::Json, "JSON config", env_connect().as_deref())
    }

    /// Reads a config file: JSON when its name ends in `.json`, TOML otherwise. See
    /// [`from_toml_str`](WardenConfig::from_toml_str) for `connect` and `ZK_CONNECT`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the file when it cannot be read or parsed, and as
    /// [`from_toml_str`](WardenConfig::from_toml_str) for its contents.
    pub fn from_file(path: impl AsRef<Path>) -> Result<WardenConfig> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::InvalidArgument(format!("cannot read config file {}: {e}", path.display()))
        })?;
        let format = match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("json") => Format::Json,
            _ => Format::Toml,
        };
        let origin = format!("config file {}", path.display());
        parse(&text, format, &origin, env_connect().as_deref())
    }
}

/// `ZK_CONNECT`, when set to something other than blanks.
fn env_connect() -> Option<String> {
    std::env::var(CONNECT_ENV)
        .ok()
        .filter(|value| !value.trim().is_empty())
}

/// Parses and validates `text`; `env` stands for `ZK_CONNECT` (passed in so tests need not
/// change the process environment, which other tests share).
fn parse(text: &str, format: Format, origin: &str, env: Option<&str>) -> Result<WardenConfig> {
    let mut value: serde_json::Value = match format {
        Format::Toml => toml::from_str(text)
            .map_err(|e| Error::InvalidArgument(format!("{origin}: {}", e.message())))?,
        Format::Json => serde_json::from_str(text)
            .map_err(|e| Error::InvalidArgument(format!("{origin}: {e}")))?,
    };
    let Some(fields) = value.as_object_mut() else {
        return Err(Error::InvalidArgument(format!(
            "{origin}: expected a table of settings"
        )));
    };
    if let Some(servers) = env {
        fields.insert("connect".into(), servers.into());
    } else if !fields.contains_key("connect") {
        return Err(Error::InvalidArgument(format!(
            "{origin}: no servers: set `connect` in the file or {CONNECT_ENV} in the environment"
        )));
    }
    let config: WardenConfig = serde_json::from_value(value)
        .map_err(|e| Error::InvalidArgument(format!("{origin}: {e}")))?;
    config.validate()?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const SERVICE: &str = r#"
        session_timeout = "8s"
        namespace = "/svc"
        retry = { kind = "n_times", n = 3, sleep = "50ms" }
    "#;

    fn toml(text: &str, env: Option<&str>) -> Result<WardenConfig> {
        parse(text, Format::Toml, "test config", env)
    }

    #[test]
    fn servers_come_from_the_environment_when_the_file_has_none() {
        let config = toml(SERVICE, Some("zk-prod:2181")).unwrap();
        assert_eq!(config.connect, "zk-prod:2181");
        assert_eq!(config.session_timeout, Duration::from_secs(8));
        assert_eq!(config.namespace.as_deref(), Some("/svc"));
    }

    #[test]
    fn the_environment_wins_over_the_file() {
        let text = format!("connect = \"localhost:2181\"\n{SERVICE}");
        assert_eq!(toml(&text, None).unwrap().connect, "localhost:2181");
        assert_eq!(
            toml(&text, Some("zk-a:1,zk-b:2")).unwrap().connect,
            "zk-a:1,zk-b:2"
        );
    }

    #[test]
    fn no_servers_anywhere_is_a_clear_error() {
        let err = toml(SERVICE, None).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidArgument(m) if m.contains("ZK_CONNECT") && m.contains("test config")),
            "{err}"
        );
    }

    #[test]
    fn json_reads_the_same_settings() {
        let text = r#"{ "session_timeout": "8s", "namespace": "/svc" }"#;
        let config = parse(text, Format::Json, "json", Some("h:1")).unwrap();
        assert_eq!(config.connect, "h:1");
        assert_eq!(config.namespace.as_deref(), Some("/svc"));
    }

    #[test]
    fn bad_text_unknown_fields_and_bad_values_name_the_origin() {
        for (text, needle) in [
            ("session_timeout = ", "test config"),
            ("sesion_timeout = \"8s\"", "sesion_timeout"),
            ("session_timeout = \"soon\"", "test config"),
            ("session_timeout = \"0s\"", "session_timeout"),
            (
                "reconnect_backoff = { min = \"0s\" }",
                "reconnect_backoff.min",
            ),
        ] {
            match toml(text, Some("h:1")) {
                Err(Error::InvalidArgument(m)) => assert!(m.contains(needle), "{text}: {m}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        assert!(matches!(
            parse("[1, 2]", Format::Json, "json", Some("h:1")),
            Err(Error::InvalidArgument(m)) if m.contains("table")
        ));
        assert!(matches!(
            toml("", Some("h:notaport")),
            Err(Error::InvalidConnectString { .. })
        ));
    }

    #[test]
    fn files_are_read_by_extension_and_missing_ones_named() {
        let dir = std::env::temp_dir().join(format!("zkwarden-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let json = dir.join("svc.json");
        std::fs::write(&json, r#"{ "connect": "h:1", "namespace": "/j" }"#).unwrap();
        let toml_file = dir.join("svc.conf");
        std::fs::write(&toml_file, "connect = \"h:2\"\nnamespace = \"/t\"").unwrap();
        // `from_file` reads ZK_CONNECT, which no test sets; a developer's shell might.
        if env_connect().is_none() {
            assert_eq!(WardenConfig::from_file(&json).unwrap().connect, "h:1");
            assert_eq!(
                WardenConfig::from_file(&toml_file)
                    .unwrap()
                    .namespace
                    .as_deref(),
                Some("/t")
            );
        }
        let missing = dir.join("nope.toml");
        match WardenConfig::from_file(&missing) {
            Err(Error::InvalidArgument(m)) => assert!(m.contains("nope.toml"), "{m}"),
            other => panic!("{other:?}"),
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
