//! `chaos expire` and `chaos proxy`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use zkwarden::testing::{FaultProxy, expire_session_with};
use zkwarden::{ClientBuilder, SessionId, SessionPassword, Warden};
use zkwarden_recipes::lock::sort_contenders;

use crate::args::{ExpireArgs, Global};
use crate::connect;
use crate::data::join;
use crate::exit::Failure;
use crate::output::{Output, hex};
use crate::password::session_password;

/// Parses `0x1000a3c2e5b0000` (ZooKeeper's way of printing ids) or a decimal number.
///
/// # Errors
/// [`Failure::Usage`] for anything else.
pub fn parse_session_id(text: &str) -> Result<i64, Failure> {
    let bad = |e: std::num::ParseIntError| {
        Failure::Usage(format!(
            "bad session id {text:?}: {e} (write 0x... or decimal)"
        ))
    };
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        // Ids use all 64 bits; the server prints their unsigned bit pattern.
        Some(hex) => u64::from_str_radix(hex, 16)
            .map(|id| i64::from_ne_bytes(id.to_ne_bytes()))
            .map_err(bad),
        None => text.parse::<i64>().map_err(bad),
    }
}

/// The session that owns the ephemeral node `path`.
async fn owner_of(warden: &Warden, path: &str) -> Result<i64, Failure> {
    let context = || format!("owner of {path}");
    let stat = warden
        .exists(path)
        .await
        .map_err(|e| Failure::zk(context(), e))?
        .ok_or_else(|| Failure::zk(context(), zkwarden::Error::NoNode))?;
    if stat.ephemeral_owner == 0 {
        return Err(Failure::Usage(format!(
            "{path} is not an ephemeral node: no session owns it"
        )));
    }
    Ok(stat.ephemeral_owner)
}

/// The session holding the lock at `path`: the owner of the first contender node.
async fn lock_holder(warden: &Warden, path: &str) -> Result<(i64, String), Failure> {
    let children = warden
        .get_children(path)
        .await
        .map_err(|e| Failure::zk(format!("lock holder of {path}"), e))?;
    let first = sort_contenders(children)
        .into_iter()
        .next()
        .ok_or_else(|| Failure::zk(format!("nobody holds {path}"), zkwarden::Error::NoNode))?;
    let node = join(path, &first);
    Ok((owner_of(warden, &node).await?, node))
}

/// The settings of the connection that closes the session: the config's servers, over TLS
/// when the config says so (cargo feature `tls`).
fn closing_connection(config: &zkwarden::WardenConfig) -> Result<ClientBuilder, Failure> {
    let builder = ClientBuilder::new(config.connect.clone());
    #[cfg(feature = "tls")]
    if let Some(files) = &config.tls {
        let tls = files
            .load()
            .map_err(|e| Failure::Usage(format!("tls: {e}")))?;
        return Ok(builder.tls(tls));
    }
    Ok(builder)
}

/// `chaos expire --session ID | --lock-holder PATH | --owner-of PATH`.
///
/// # Errors
/// [`Failure::Usage`] for a bad id or a persistent node; ZooKeeper errors finding the owner;
/// [`Failure::Zk`] with `ConnectFailed` when no server confirms the expiry within ten seconds.
pub async fn expire(global: &Global, out: Output, args: &ExpireArgs) -> Result<(), Failure> {
    let config = connect::config(global)?;
    let (id, via) = match (&args.session, &args.lock_holder, &args.owner_of) {
        (Some(id), _, _) => (parse_session_id(id)?, None),
        (None, lock, owner) => {
            let warden = connect::warden(global).await?;
            let found = match (lock, owner) {
                (Some(lock), _) => lock_holder(&warden, lock)
                    .await
                    .map(|(id, node)| (id, Some(node))),
                (None, Some(node)) => owner_of(&warden, node)
                    .await
                    .map(|id| (id, Some(node.clone()))),
                (None, None) => Err(Failure::Usage(
                    "give --session, --lock-holder or --owner-of".into(),
                )),
            };
            // Our own session must not linger: close it before the target's expiry.
            let _ = warden.close().await;
            found?
        }
    };
    let password = SessionPassword::new(session_password(id).to_vec());
    let builder = closing_connection(&config)?;
    expire_session_with(&builder, SessionId(id), &password)
        .await
        .map_err(|e| Failure::zk(format!("expiring session {}", hex(id)), e))?;
    let human = match &via {
        Some(node) => format!("expired session {} (owner of {node})", hex(id)),
        None => format!("expired session {}", hex(id)),
    };
    out.emit(human, &json!({ "expired": hex(id), "node": via }));
    Ok(())
}

/// A line of `chaos proxy`'s standard input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Switch {
    Pass,
    Latency(Duration),
    Blackhole,
    DropReplies,
    Reset,
    Refuse,
    Accept,
    Stats,
    Quit,
}

/// Reads one command line; `None` for a blank line.
fn parse_switch(line: &str) -> Result<Option<Switch>, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    Ok(Some(match words.as_slice() {
        [] => return Ok(None),
        ["pass"] => Switch::Pass,
        ["latency", ms] => Switch::Latency(Duration::from_millis(
            ms.parse::<u64>()
                .map_err(|e| format!("latency wants milliseconds: {e}"))?,
        )),
        ["blackhole"] => Switch::Blackhole,
        ["drop-replies"] => Switch::DropReplies,
        ["reset"] => Switch::Reset,
        ["refuse"] => Switch::Refuse,
        ["accept"] => Switch::Accept,
        ["stats"] => Switch::Stats,
        ["quit" | "exit"] => Switch::Quit,
        _ => return Err(format!("unknown command {line:?}")),
    }))
}

/// Flips the proxy's switch.
fn apply(proxy: &FaultProxy, switch: Switch) {
    match switch {
        Switch::Pass => proxy.pass_through(),
        Switch::Latency(latency) => proxy.set_latency(latency),
        Switch::Blackhole => proxy.blackhole(),
        Switch::DropReplies => proxy.drop_replies(),
        Switch::Reset => proxy.reset_all(),
        Switch::Refuse => proxy.refuse_new(true),
        Switch::Accept => proxy.refuse_new(false),
        Switch::Stats | Switch::Quit => {}
    }
}

/// The proxy's counters, as text and JSON.
fn stats(proxy: &FaultProxy) -> (String, Value) {
    let s = proxy.stats();
    (
        format!(
            "connections {} open, {} accepted, {} refused; bytes {} to server, {} to clients, \
             {} dropped",
            proxy.connection_count(),
            s.accepted,
            s.refused,
            s.bytes_to_server,
            s.bytes_to_client,
            s.bytes_dropped
        ),
        json!({ "open": proxy.connection_count(), "accepted": s.accepted,
                "refused": s.refused, "bytes_to_server": s.bytes_to_server,
                "bytes_to_client": s.bytes_to_client, "bytes_dropped": s.bytes_dropped }),
    )
}

/// What one command line calls for.
enum Reply {
    /// Stop the proxy.
    Quit,
    /// A blank line: nothing to say.
    Nothing,
    /// The answer, as text and JSON.
    Answer(String, Value),
}

/// Carries out one command line on `proxy` (from standard input or the control port).
fn handle_line(proxy: &FaultProxy, line: &str) -> Reply {
    let line = line.trim();
    match parse_switch(line) {
        Ok(None) => Reply::Nothing,
        Ok(Some(Switch::Quit)) => Reply::Quit,
        Ok(Some(Switch::Stats)) => {
            let (human, value) = stats(proxy);
            Reply::Answer(human, value)
        }
        Ok(Some(switch)) => {
            apply(proxy, switch);
            Reply::Answer(format!("ok {line}"), json!({ "ok": true, "command": line }))
        }
        Err(error) => Reply::Answer(
            format!("error: {error}"),
            json!({ "ok": false, "command": line, "error": error }),
        ),
    }
}

/// Serves command lines from standard input until it ends (`true` when it said `quit`).
async fn from_stdin(out: Output, proxy: &FaultProxy) -> bool {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        match handle_line(proxy, &line) {
            Reply::Quit => return true,
            Reply::Nothing => {}
            Reply::Answer(human, value) => {
                if !out.emit(human, &value) {
                    return false;
                }
            }
        }
    }
    false
}

/// Serves command lines on every connection to the control port; `quit` from any of them
/// stops the proxy.
async fn control_port(
    listener: TcpListener,
    proxy: Arc<FaultProxy>,
    out: Output,
    quit: Arc<Notify>,
) {
    while let Ok((socket, _)) = listener.accept().await {
        let (proxy, quit) = (proxy.clone(), quit.clone());
        tokio::spawn(async move {
            let (reader, mut writer) = socket.into_split();
            let mut lines = BufReader::new(reader).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                match handle_line(&proxy, &line) {
                    Reply::Quit => {
                        quit.notify_one();
                        return;
                    }
                    Reply::Nothing => {}
                    Reply::Answer(human, value) => {
                        let answer = out.render(human, &value) + "\n";
                        if writer.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }
}

/// Resolves `HOST:PORT`.
async fn resolve(what: &str, address: &str) -> Result<SocketAddr, Failure> {
    tokio::net::lookup_host(address)
        .await
        .ok()
        .and_then(|mut found| found.next())
        .ok_or_else(|| Failure::Usage(format!("bad {what} address {address:?} (HOST:PORT)")))
}

/// `chaos proxy --listen A --upstream B [--control C]`: runs until `quit` (on standard input
/// or the control port) or, without a control port, until standard input ends.
///
/// # Errors
/// [`Failure::Usage`] for bad addresses or when A or C cannot be bound.
pub async fn proxy(
    out: Output,
    listen: &str,
    upstream: &str,
    control: Option<&str>,
) -> Result<(), Failure> {
    let listen = resolve("--listen", listen).await?;
    let upstream = resolve("--upstream", upstream).await?;
    let proxy = Arc::new(
        FaultProxy::start_on(listen, upstream)
            .await
            .map_err(|e| Failure::Usage(format!("cannot listen on {listen}: {e}")))?,
    );
    let quit = Arc::new(Notify::new());
    let control = match control {
        Some(control) => {
            let address = resolve("--control", control).await?;
            let listener = TcpListener::bind(address)
                .await
                .map_err(|e| Failure::Usage(format!("cannot listen on {address}: {e}")))?;
            let bound = listener.local_addr().ok();
            tokio::spawn(control_port(listener, proxy.clone(), out, quit.clone()));
            bound
        }
        None => None,
    };
    let shown_control = control.map_or(String::new(), |c| format!("; control port {c}"));
    out.emit(
        format!(
            "listening on {}, relaying to {upstream}{shown_control}; commands: pass, latency MS, \
             blackhole, drop-replies, reset, refuse, accept, stats, quit",
            proxy.addr()
        ),
        &json!({ "listening": proxy.addr().to_string(), "upstream": upstream.to_string(),
                 "control": control.map(|c| c.to_string()) }),
    );
    let stdin = async {
        // With a control port, the end of standard input (a proxy started in the background)
        // does not stop the proxy; `quit` does.
        if !from_stdin(out, &proxy).await && control.is_some() {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = stdin => {}
        () = quit.notified() => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_and_switches_parse() {
        assert_eq!(parse_session_id("0x10").unwrap(), 16);
        assert_eq!(parse_session_id("0xffffffffffffffff").unwrap(), -1);
        assert_eq!(parse_session_id("42").unwrap(), 42);
        assert!(parse_session_id("0xzz").is_err());
        assert_eq!(
            parse_switch("latency 25").unwrap(),
            Some(Switch::Latency(Duration::from_millis(25)))
        );
        assert_eq!(parse_switch("  ").unwrap(), None);
        assert!(parse_switch("latency soon").is_err());
        assert!(parse_switch("blackhole now").is_err());
    }
}
