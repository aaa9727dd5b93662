//! `FaultProxy`: its mechanics byte for byte against a plain echo server, then what a
//! ZooKeeper client lives through behind each fault, against real servers.
#![cfg(feature = "testing")]

mod common;

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

use common::*;
use zkwarden::testing::{FaultProxy, ZkEnsemble, connect_string_of};
use zkwarden::{Client, CreateMode, Error, SessionState};

// ----- helpers ----------------------------------------------------------------------------

/// The read timeout a client derives from [`SESSION_TIMEOUT`]: silence this long drops the
/// connection.
fn read_timeout() -> Duration {
    SESSION_TIMEOUT * 2 / 3
}

/// A server that sends back every byte it reads and closes its side after the client's.
async fn start_echo() -> SocketAddr {
    init_tracing();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut read, mut write) = stream.split();
                if tokio::io::copy(&mut read, &mut write).await.is_ok() {
                    let _ = write.shutdown().await;
                }
            });
        }
    });
    addr
}

async fn connect_to(proxy: &FaultProxy) -> TcpStream {
    TcpStream::connect(proxy.addr()).await.unwrap()
}

/// Reads exactly `n` bytes.
async fn read_n(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    within("reading through the proxy", stream.read_exact(&mut buf))
        .await
        .unwrap();
    buf
}

/// Asserts that nothing arrives on `stream` for `quiet`: the way to check silence.
async fn assert_silent(stream: &mut TcpStream, quiet: Duration) {
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(quiet, stream.read(&mut byte)).await;
    assert!(read.is_err(), "expected silence, got {read:?}");
}

/// Asserts that the proxy closed `stream` with a reset.
async fn assert_reset(stream: &mut TcpStream) {
    let mut byte = [0u8; 1];
    match within("the proxy closes the connection", stream.read(&mut byte)).await {
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}"),
        Ok(n) => panic!("expected a reset, read {n} bytes"),
    }
}

/// Polls `cond` until it holds (up to [`PATIENCE`]); for state that has no event to await.
async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    within(what, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

/// A client with the tests' session timeout, connected through `proxy`.
async fn connect_through(proxy: &FaultProxy) -> Client {
    connect(&proxy.connect_string()).await
}

// ----- mechanics, against an echo server --------------------------------------------------

#[tokio::test]
async fn passes_bytes_both_ways_and_forwards_a_close() {
    let echo = start_echo().await;
    let proxy = FaultProxy::start(echo).await.unwrap();
    assert_eq!(proxy.upstream(), echo);
    assert_eq!(proxy.connect_string(), proxy.addr().to_string());
    assert!(proxy.addr().ip().is_loopback());

    let mut stream = connect_to(&proxy).await;
    stream.write_all(b"hello").await.unwrap();
    assert_eq!(read_n(&mut stream, 5).await, b"hello");
    assert_eq!(proxy.connection_count(), 1);

    // Our close reaches the echo server, whose close comes back: an orderly end both ways.
    stream.shutdown().await.unwrap();
    let mut rest = Vec::new();
    within("end of stream", stream.read_to_end(&mut rest))
        .await
        .unwrap();
    assert!(rest.is_empty());
    wait_until("the connection is gone", || proxy.connection_count() == 0).await;
    let stats = proxy.stats();
    assert_eq!((stats.bytes_to_server, stats.bytes_to_client), (5, 5));
    assert_eq!(
        (stats.accepted, stats.refused, stats.bytes_dropped),
        (1, 0, 0)
    );
}

#[tokio::test]
async fn latency_delays_every_chunk_and_keeps_the_order() {
    let echo = start_echo().await;
    let proxy = FaultProxy::start(echo).await.unwrap();
    let mut stream = connect_to(&proxy).await;
    proxy.set_latency(Duration::from_millis(50));

    let started = Instant::now();
    let mut sent = Vec::new();
    for i in 0..200u32 {
        let piece = i.to_be_bytes();
        stream.write_all(&piece).await.unwrap();
        sent.extend_from_slice(&piece);
    }
    assert_eq!(read_n(&mut stream, sent.len()).await, sent);
    // Each byte was delayed once on the way there and once on the way back.
    assert!(started.elapsed() >= Duration::from_millis(100));

    proxy.set_latency(Duration::ZERO);
    stream.write_all(b"fast").await.unwrap();
    assert_eq!(read_n(&mut stream, 4).await, b"fast");
}

#[tokio::test]
async fn blackhole_holds_bytes_on_open_sockets_and_releases_them_in_order() {
    let echo = start_echo().await;
    let proxy = FaultProxy::start(echo).await.unwrap();
    let mut old = connect_to(&proxy).await;
    old.write_all(b"warm").await.unwrap();
    assert_eq!(read_n(&mut old, 4).await, b"warm");
    let before = proxy.stats();

    proxy.blackhole();
    old.write_all(b"abc").await.unwrap();
    // A connection opened during the blackhole is accepted, and just as silent.
    let mut new = connect_to(&proxy).await;
    new.write_all(b"xyz").await.unwrap();
    assert_silent(&mut old, Duration::from_millis(300)).await;
    assert_silent(&mut new, Duration::from_millis(50)).await;
    old.write_all(b"def").await.unwrap();
    let during = proxy.stats();
    assert_eq!(
        during.bytes_to_server, before.bytes_to_server,
        "nothing forwarded"
    );
    assert_eq!(
        during.bytes_to_client, before.bytes_to_client,
        "nothing forwarded"
    );
    wait_until("both connections are proxied", || {
        proxy.connection_count() == 2
    })
    .await;

    proxy.pass_through();
    assert_eq!(read_n(&mut old, 6).await, b"abcdef");
    assert_eq!(read_n(&mut new, 3).await, b"xyz");
}

#[tokio::test]
async fn dropped_replies_are_lost_and_the_torn_connection_is_reset_on_pass_through() {
    let echo = start_echo().await;
    let proxy = FaultProxy::start(echo).await.unwrap();
    let mut torn = connect_to(&proxy).await;
    torn.write_all(b"ok").await.unwrap();
    assert_eq!(read_n(&mut torn, 2).await, b"ok");
    let mut untouched = connect_to(&proxy).await;

    proxy.drop_replies();
    torn.write_all(b"lost").await.unwrap();
    // The request reached the echo server: its echo is what gets dropped.
    wait_until("the echo is discarded", || proxy.stats().bytes_dropped == 4).await;
    assert_eq!(proxy.stats().bytes_to_server, 2 + 4);

    proxy.pass_through();
    assert_reset(&mut torn).await;
    // A connection that lost nothing carries on.
    untouched.write_all(b"still").await.unwrap();
    assert_eq!(read_n(&mut untouched, 5).await, b"still");
}

#[tokio::test]
async fn reset_all_cuts_open_connections_and_refuse_new_turns_new_ones_away() {
    let echo = start_echo().await;
    let proxy = FaultProxy::start(echo).await.unwrap();
    let mut first = connect_to(&proxy).await;
    let mut second = connect_to(&proxy).await;
    first.write_all(b"1").await.unwrap();
    assert_eq!(read_n(&mut first, 1).await, b"1");

    proxy.reset_all();
    assert_reset(&mut first).await;
    assert_reset(&mut second).await;
    wait_until("no connection left", || proxy.connection_count() == 0).await;

    // New connections are still welcome after a reset...
    let mut after = connect_to(&proxy).await;
    after.write_all(b"2").await.unwrap();
    assert_eq!(read_n(&mut after, 1).await, b"2");

    // ...unless refused: accepted by the kernel, then reset at once.
    proxy.refuse_new(true);
    let mut refused = connect_to(&proxy).await;
    assert_reset(&mut refused).await;
    assert_eq!(proxy.stats().refused, 1);
    // Refusing leaves open connections alone.
    after.write_all(b"3").await.unwrap();
    assert_eq!(read_n(&mut after, 1).await, b"3");

    proxy.refuse_new(false);
    let mut welcome = connect_to(&proxy).await;
    welcome.write_all(b"4").await.unwrap();
    assert_eq!(read_n(&mut welcome, 1).await, b"4");
    assert_eq!(proxy.stats().accepted, 4);
}

#[tokio::test]
async fn dropping_the_proxy_closes_its_connections_and_its_port() {
    let echo = start_echo().await;
    let proxy = FaultProxy::start(echo).await.unwrap();
    let addr = proxy.addr();
    let mut stream = connect_to(&proxy).await;
    stream.write_all(b"hi").await.unwrap();
    assert_eq!(read_n(&mut stream, 2).await, b"hi");

    drop(proxy);
    let mut rest = Vec::new();
    let closed = within("the connection closes", stream.read_to_end(&mut rest)).await;
    assert!(
        matches!(&closed, Ok(0)) || closed.is_err(),
        "expected a close, got {closed:?}"
    );
    // The connection's task is gone, so the accept loop and its listener are too.
    assert!(TcpStream::connect(addr).await.is_err());
}

// ----- a ZooKeeper client behind the proxy ------------------------------------------------

#[tokio::test]
async fn operations_work_through_the_proxy() {
    let server = start_server().await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let client = connect_through(&proxy).await;
    let path = unique_path("proxied");
    client
        .create(&path, b"one", CreateMode::Persistent)
        .await
        .unwrap();
    client.set_data(&path, b"two", None).await.unwrap();
    let (data, stat) = client.get_data(&path).await.unwrap();
    assert_eq!(&data[..], b"two");
    assert_eq!(stat.version, 1);
    client.delete(&path, None).await.unwrap();
    assert_eq!(client.exists(&path).await.unwrap(), None);

    assert_eq!(client.connected_server(), Some(proxy.addr()));
    assert_eq!(proxy.connection_count(), 1);
    let stats = proxy.stats();
    assert!(
        stats.bytes_to_server > 0 && stats.bytes_to_client > 0,
        "{stats:?}"
    );
}

#[tokio::test]
async fn latency_slows_requests_without_breaking_them() {
    let server = start_server().await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let client = connect_through(&proxy).await;
    let path = unique_path("slow");
    client
        .create(&path, b"patient", CreateMode::Persistent)
        .await
        .unwrap();
    let before = proxy.stats();

    proxy.set_latency(Duration::from_millis(200));
    let started = Instant::now();
    let (data, _) = within("get_data with latency", client.get_data(&path))
        .await
        .unwrap();
    assert_eq!(&data[..], b"patient");
    // The request and its reply were each held back 200 ms.
    assert!(started.elapsed() >= Duration::from_millis(400));
    let after = proxy.stats();
    assert!(after.bytes_to_server > before.bytes_to_server);
    assert!(after.bytes_to_client > before.bytes_to_client);
    assert_eq!(client.session_state(), SessionState::Connected);
}

#[tokio::test]
async fn short_blackhole_delays_a_request_without_losing_the_connection() {
    let server = start_server().await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let client = connect_through(&proxy).await;
    let path = unique_path("stalled");
    client
        .create(&path, b"held", CreateMode::Persistent)
        .await
        .unwrap();
    let session = client.session_id();
    let mut states = client.state();
    states.borrow_and_update();

    proxy.blackhole();
    let request = tokio::spawn(client.get_data(&path));
    // The stall itself, well under the client's read timeout.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!request.is_finished(), "no reply can cross a blackhole");
    proxy.pass_through();

    let (data, _) = within("the held request completes", request)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&data[..], b"held");
    assert_eq!(client.session_id(), session);
    assert!(
        !states.has_changed().unwrap(),
        "state changed to {:?}",
        *states.borrow()
    );
    assert_eq!(client.session_state(), SessionState::Connected);
}

#[tokio::test]
async fn long_blackhole_disconnects_then_the_session_resumes() {
    let server = start_server().await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let client = connect_through(&proxy).await;
    let session = client.session_id();
    let mut states = client.state();

    proxy.blackhole();
    let started = Instant::now();
    let status = wait_for_state(&mut states, "Disconnected by the read timeout", |s| {
        s == SessionState::Disconnected
    })
    .await;
    // Silence, not a close: the client waited for (most of) its read timeout.
    assert!(
        started.elapsed() >= read_timeout() / 3,
        "{:?}",
        started.elapsed()
    );
    assert_eq!(status.session_id, session);

    // The client is retrying through the same silent proxy; heal it before the session's
    // third of a timeout left runs out.
    proxy.pass_through();
    let status = wait_for_state(&mut states, "Connected again", |s| {
        s == SessionState::Connected
    })
    .await;
    assert_eq!(status.session_id, session);
    let path = unique_path("after-blackhole");
    client
        .create(&path, b"", CreateMode::Ephemeral)
        .await
        .unwrap();
}

#[tokio::test]
async fn dropped_replies_mean_the_write_landed_but_the_caller_sees_connection_loss() {
    let server = start_server().await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let client = connect_through(&proxy).await;
    let observer = connect(&server.connect_string()).await;
    let session = client.session_id();
    let mut states = client.state();
    let path = unique_path("lost-reply");
    let (absent, created) = observer.exists_and_watch(&path).await.unwrap();
    assert_eq!(absent, None);

    proxy.drop_replies();
    let create = tokio::spawn(client.create(&path, b"landed", CreateMode::Persistent));
    // The server applies the create: the direct observer is told.
    within("the create lands on the server", created)
        .await
        .unwrap();
    let (data, _) = observer.get_data(&path).await.unwrap();
    assert_eq!(&data[..], b"landed");
    // Its reply, though, never arrives: the client learns nothing until its read timeout.
    assert_eq!(
        within("the create fails", create)
            .await
            .unwrap()
            .unwrap_err(),
        Error::ConnectionLoss
    );
    assert!(proxy.stats().bytes_dropped > 0);

    proxy.pass_through();
    let status = wait_for_state(&mut states, "Connected again", |s| {
        s == SessionState::Connected
    })
    .await;
    assert_eq!(status.session_id, session);
    assert!(client.exists(&path).await.unwrap().is_some());
}

#[tokio::test]
async fn reset_all_disconnects_at_once_and_the_client_resumes_the_session() {
    let server = start_server().await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let client = connect_through(&proxy).await;
    let session = client.session_id();
    let mut states = client.state();

    proxy.reset_all();
    wait_for_state(&mut states, "Disconnected", |s| {
        s == SessionState::Disconnected
    })
    .await;
    let status = wait_for_state(&mut states, "Connected again", |s| {
        s == SessionState::Connected
    })
    .await;
    assert_eq!(status.session_id, session);
    assert!(proxy.stats().accepted >= 2);
    client.get_data("/").await.unwrap();
}

#[tokio::test]
async fn refused_connections_keep_the_client_disconnected_until_allowed() {
    let server = start_server().await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let client = connect_through(&proxy).await;
    let session = client.session_id();
    let mut states = client.state();

    proxy.refuse_new(true);
    proxy.reset_all();
    wait_for_state(&mut states, "Disconnected", |s| {
        s == SessionState::Disconnected
    })
    .await;
    wait_until("the client's retries are refused", || {
        proxy.stats().refused >= 2
    })
    .await;
    assert!(
        !states.has_changed().unwrap(),
        "state changed to {:?}",
        *states.borrow()
    );
    assert_eq!(proxy.connection_count(), 0);

    proxy.refuse_new(false);
    let status = wait_for_state(&mut states, "Connected again", |s| {
        s == SessionState::Connected
    })
    .await;
    assert_eq!(status.session_id, session);
}

#[tokio::test]
async fn ensemble_client_leaves_a_blackholed_member_for_another() {
    init_tracing();
    let ensemble = Arc::new(blocking(|| ZkEnsemble::start(3)).await.expect("ensemble"));
    let addrs: Vec<SocketAddr> = (0..ensemble.len()).map(|i| ensemble.addr(i)).collect();
    let proxies = FaultProxy::start_many(&addrs).await.unwrap();
    let connect_string = connect_string_of(&proxies);
    assert_eq!(connect_string.split(',').count(), 3);
    let client = connect(&connect_string).await;
    let session = client.session_id();
    let mut states = client.state();

    let member = {
        let ensemble = ensemble.clone();
        blocking(move || ensemble.member_of_session(session.0))
            .await
            .expect("a member holds the session")
    };
    let cut = proxies
        .iter()
        .position(|p| p.upstream().port() == ensemble.addr(member).port())
        .expect("a proxy fronts every member");
    assert_eq!(client.connected_server(), Some(proxies[cut].addr()));

    // The member's link goes quiet; a connect to it would hang the same way. Refusing new
    // connections there keeps a retry of that host from spending the session's last third
    // on a silent handshake (see the client's host order after a failure).
    proxies[cut].blackhole();
    proxies[cut].refuse_new(true);
    wait_for_state(&mut states, "Disconnected from the silent member", |s| {
        s == SessionState::Disconnected
    })
    .await;
    let status = wait_for_state(&mut states, "Connected to another member", |s| {
        s == SessionState::Connected
    })
    .await;
    assert_eq!(status.session_id, session);
    let now_on = client.connected_server().expect("connected");
    assert_ne!(now_on, proxies[cut].addr());
    assert!(proxies.iter().any(|p| p.addr() == now_on));
    let path = unique_path("moved");
    client
        .create(&path, b"", CreateMode::Ephemeral)
        .await
        .unwrap();
}
