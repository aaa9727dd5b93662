//! Prints a typed configuration kept in one znode every time it changes.
//!
//! ```text
//! cargo run -p zkwarden-recipes --example config_watch -- --connect 127.0.0.1:2181 --path /app/config
//! # in another shell:
//! zkCli.sh set /app/config '{"name":"web","max_connections":200,"features":["gzip"]}'
//! ```
//!
//! The node holds JSON. Until it exists the program shows the default; data that does not
//! decode is reported and the last good value stays in force.

use std::time::Duration;

use serde::Deserialize;
use zkwarden::Warden;
use zkwarden::warden::RetryConfig;
use zkwarden_recipes::config::{ConfigEvent, ConfigWatch, Format};

const USAGE: &str = "usage: config_watch --connect HOSTS --path PATH";

/// The configuration this program expects.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct AppConfig {
    name: String,
    max_connections: u32,
    features: Vec<String>,
}

fn parse_args() -> Result<(String, String), String> {
    let mut connect = None;
    let mut path = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--connect" => connect = Some(value()?),
            "--path" => path = Some(value()?),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    match (connect, path) {
        (Some(connect), Some(path)) => Ok((connect, path)),
        _ => Err(USAGE.to_owned()),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (connect, path) = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let warden = Warden::builder(&connect)
        .retry(RetryConfig::Forever {
            sleep: Duration::from_millis(200),
        })
        .start()
        .await?;
    let config = ConfigWatch::<AppConfig>::builder(&warden, &path)
        .format(Format::Json)
        .default(AppConfig::default())
        .start()
        .await?;
    let mut events = config.events();
    println!("config: {:?}", config.get());
    let mut shutdown = std::pin::pin!(tokio::signal::ctrl_c());
    loop {
        let event = tokio::select! {
            event = events.next() => event,
            _ = &mut shutdown => break,
        };
        match event {
            Some(ConfigEvent::Updated { version }) => {
                println!("config (version {version}): {:?}", config.get());
            }
            Some(ConfigEvent::Invalid { error, version }) => {
                println!(
                    "version {version} is not valid ({error}); keeping {:?}",
                    config.get()
                );
            }
            Some(ConfigEvent::Missing) => println!("no config node; using {:?}", config.get()),
            Some(ConfigEvent::Resynced { generation }) => {
                println!("read again on session generation {generation}");
            }
            Some(ConfigEvent::Lagged { .. }) => println!("config: {:?}", config.get()),
            None => break,
        }
    }
    drop(config);
    warden.close().await?;
    Ok(())
}
