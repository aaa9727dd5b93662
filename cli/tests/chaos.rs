//! `chaos expire` of another client's session, and `chaos proxy` switched by standard input.

mod common;

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use common::{Running, json, server, zk};
use zkwarden::{Client, SessionState};

/// Generous bound for what a test waits for; reaching it means the test failed.
const PATIENCE: Duration = Duration::from_secs(30);

async fn wait_for_state(client: &Client, wanted: SessionState) {
    let mut states = client.state();
    tokio::time::timeout(PATIENCE, async {
        while states.borrow_and_update().state != wanted {
            states.changed().await.expect("client task alive");
        }
    })
    .await
    .unwrap_or_else(|_| panic!("client never reached {wanted:?}"));
}

/// A client whose session outlives the test's faults.
async fn connect(connect_string: String) -> Client {
    Client::builder(connect_string)
        .session_timeout(Duration::from_secs(10))
        .connect()
        .await
        .expect("connect")
}

#[tokio::test]
async fn chaos_expire_ends_another_clients_session_by_its_id_alone() {
    let servers = tokio::task::spawn_blocking(|| server().connect_string())
        .await
        .unwrap();
    let client = connect(servers).await;
    let id = client.session_id();
    let shown = id.to_string(); // 0x..., as ZooKeeper prints it

    // Only the id crosses over: the password is derived as the server derives it. A wrong
    // password would leave the session alive and this client connected.
    let expired =
        tokio::task::spawn_blocking(move || json(&["chaos", "expire", "--session", &shown]))
            .await
            .unwrap();
    assert_eq!(expired["expired"], id.to_string());
    wait_for_state(&client, SessionState::Expired).await;

    // A bad id is a usage error.
    let bad = tokio::task::spawn_blocking(|| {
        zk().args(["chaos", "expire", "--session", "0xnope"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

/// Sends one command line to the proxy and returns its answer.
fn command(proxy: &mut Running, line: &str) -> serde_json::Value {
    let stdin = proxy.child.stdin.as_mut().expect("stdin");
    writeln!(stdin, "{line}").unwrap();
    stdin.flush().unwrap();
    serde_json::from_str(&proxy.stdout_line()).unwrap()
}

#[tokio::test]
async fn chaos_proxy_is_switched_by_lines_on_stdin() {
    let upstream = tokio::task::spawn_blocking(|| server().connect_string())
        .await
        .unwrap();
    let (mut proxy, banner) = tokio::task::spawn_blocking(move || {
        let mut proxy = Running::start_command(
            zk().args(["--json", "chaos", "proxy", "--upstream", &upstream])
                .stdin(Stdio::piped()),
        );
        let banner: serde_json::Value = serde_json::from_str(&proxy.stdout_line()).unwrap();
        (proxy, banner)
    })
    .await
    .unwrap();
    let listening = banner["listening"].as_str().unwrap().to_owned();

    let client = connect(listening).await;
    let session = client.session_id();
    client.exists("/").await.unwrap();

    // Refuse new connections and cut the open one: the client is disconnected and cannot
    // get back in.
    assert_eq!(command(&mut proxy, "refuse")["ok"], true);
    assert_eq!(command(&mut proxy, "reset")["ok"], true);
    wait_for_state(&client, SessionState::Disconnected).await;
    let stats = command(&mut proxy, "stats");
    assert!(stats["accepted"].as_u64().unwrap() >= 1, "{stats}");

    // Healthy again (with some latency): the same session comes back.
    assert_eq!(command(&mut proxy, "latency 20")["ok"], true);
    assert_eq!(command(&mut proxy, "accept")["ok"], true);
    wait_for_state(&client, SessionState::Connected).await;
    assert_eq!(client.session_id(), session);
    client.exists("/").await.unwrap();

    // Unknown commands are answered, not fatal; end of input stops the proxy.
    assert_eq!(command(&mut proxy, "frobnicate")["ok"], false);
    assert_eq!(command(&mut proxy, "pass")["ok"], true);
    drop(proxy.child.stdin.take());
    assert_eq!(proxy.wait(), 0);
}

#[test]
fn chaos_proxy_takes_commands_on_a_control_port_and_outlives_its_stdin() {
    use std::io::{BufRead, BufReader};

    let upstream = server().connect_string();
    // Standard input is empty: with a control port the proxy keeps running anyway.
    let mut proxy = Running::start_command(
        zk().args([
            "--json",
            "chaos",
            "proxy",
            "--upstream",
            &upstream,
            "--control",
            "127.0.0.1:0",
        ])
        .stdin(Stdio::null()),
    );
    let banner: serde_json::Value = serde_json::from_str(&proxy.stdout_line()).unwrap();
    let control = banner["control"].as_str().unwrap().to_owned();

    let socket = std::net::TcpStream::connect(&control).unwrap();
    let mut answers = BufReader::new(socket.try_clone().unwrap());
    let mut ask = |line: &str| -> serde_json::Value {
        writeln!(&socket, "{line}").unwrap();
        let mut answer = String::new();
        answers.read_line(&mut answer).unwrap();
        serde_json::from_str(&answer).unwrap()
    };
    assert_eq!(ask("blackhole")["ok"], true);
    assert_eq!(ask("pass")["ok"], true);
    assert_eq!(ask("stats")["open"], 0);
    assert_eq!(ask("latency ten")["ok"], false);
    writeln!(&socket, "quit").unwrap();
    assert_eq!(proxy.wait(), 0);
}
