//! `zkwarden`: a ZooKeeper command line for operators and chaos testers, built on the
//! `zkwarden` client and `zkwarden-recipes`. `zkwarden --help` lists the commands and the
//! exit codes.

mod args;
mod chaos;
mod child;
mod config_check;
mod connect;
mod coordinate;
mod data;
mod data_text;
mod dump;
mod exit;
mod fourlw;
mod output;
mod password;
mod watch;

use std::process::ExitCode;

use clap::Parser;

use args::{Chaos, Cli, Command, ConfigCommand};
use exit::Failure;
use output::Output;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let out = Output::new(cli.global.json);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            out.failure(&Failure::Connection(format!(
                "cannot start the runtime: {e}"
            )));
            return ExitCode::from(exit::CONNECTION);
        }
    };
    match runtime.block_on(run(cli, out)) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            out.failure(&failure);
            ExitCode::from(failure.exit_code())
        }
    }
}

/// Runs the command; `Ok` carries the exit code (COMMAND's own for `lock` and `leader`).
async fn run(cli: Cli, out: Output) -> Result<u8, Failure> {
    let global = &cli.global;
    // Commands that need no session of their own.
    match &cli.command {
        Command::Chaos(Chaos::Expire(args)) => {
            return chaos::expire(global, out, args).await.map(|()| exit::OK);
        }
        Command::Chaos(Chaos::Proxy {
            listen,
            upstream,
            control,
        }) => {
            return chaos::proxy(out, listen, upstream, control.as_deref())
                .await
                .map(|()| exit::OK);
        }
        Command::FourLetter { word, server } => {
            return fourlw::run(global, out, *word, server.as_deref())
                .await
                .map(|()| exit::OK);
        }
        Command::Config(ConfigCommand::Check { file }) => {
            return config_check::run(out, file).map(|()| exit::OK);
        }
        _ => {}
    }
    let warden = connect::warden(global).await?;
    let result = with_warden(&warden, cli.command, out).await;
    // Close the session now, so ephemeral nodes (lock nodes among them) go at once rather
    // than at the session timeout.
    let _ = warden.close().await;
    result
}

/// Runs a command that works on a session.
async fn with_warden(
    warden: &zkwarden::Warden,
    command: Command,
    out: Output,
) -> Result<u8, Failure> {
    match command {
        Command::Ls { path } => data::ls(warden, out, &path).await?,
        Command::Get { path, stat } => data::get(warden, out, &path, stat).await?,
        Command::Set {
            path,
            data: value,
            version,
            base64,
        } => data::set(warden, out, &path, &value, version, base64).await?,
        Command::Create {
            path,
            data: value,
            mode,
            ttl,
            parents,
            base64,
        } => {
            let request = data::CreateRequest {
                path: &path,
                data: &value,
                base64,
                mode,
                ttl,
                parents,
            };
            data::create(warden, out, request).await?
        }
        Command::Rm {
            path,
            recursive,
            version,
        } => data::rm(warden, out, &path, recursive, version).await?,
        Command::Stat { path } => data::stat(warden, out, &path).await?,
        Command::Tree { path } => data::tree(warden, out, &path).await?,
        Command::Watch {
            path,
            recursive,
            children,
            count,
        } => {
            let request = watch::WatchRequest {
                path: &path,
                recursive,
                children,
                count,
            };
            watch::run(warden, out, request).await?
        }
        Command::Dump { path, output } => dump::dump(warden, out, &path, output.as_deref()).await?,
        Command::Restore {
            file,
            to,
            overwrite,
        } => dump::restore(warden, out, &file, to.as_deref(), overwrite).await?,
        Command::Lock(args) => return coordinate::lock(warden, &args).await,
        Command::Leader(args) => return coordinate::leader(warden, &args).await,
        Command::Chaos(_) | Command::FourLetter { .. } | Command::Config(_) => {
            unreachable!("handled before a session is made")
        }
    }
    Ok(exit::OK)
}
