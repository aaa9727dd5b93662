//! `Warden::get_data_batch` against a real server: the reads of a batch are all in flight
//! before the first reply, a connection reset mid-batch is retried by the warden's policy (or
//! not, when the policy says so), a session expiry mid-batch is retried on the next session,
//! and every path gets its own typed result.
#![cfg(feature = "testing")]

mod common;

use std::time::Duration;

use common::*;
use tokio::task::JoinHandle;
use zkwarden::testing::{FaultProxy, ZkServer, expire_session};
use zkwarden::warden::RetryConfig;
use zkwarden::{Acl, CreateMode, Error, Op, Perms, Warden};

/// Nodes per batch: enough that a batch read one by one would take many round trips.
const NODES: usize = 200;

/// The data of node `i`: always ten bytes, so each reply has a known size.
fn data_of(i: usize) -> Vec<u8> {
    format!("value-{i:04}").into_bytes()
}

/// Bytes a `get_data` reply with ten bytes of data takes on the wire: length prefix, reply
/// header, data length and data, stat. Five times a ping reply (20 bytes), so the few pings
/// of a second cannot stand in for a missing reply.
const GET_DATA_REPLY_LEN: u64 = 4 + 16 + 4 + 10 + 68;

/// A warden on `connect` with `retry`, waiting long for a connection so that only the fault
/// decides what the batch sees.
async fn warden_with(connect: &str, retry: RetryConfig) -> Warden {
    Warden::builder(connect)
        .session_timeout(SESSION_TIMEOUT)
        .connection_timeout(Duration::from_secs(20))
        .retry(retry)
        .start()
        .await
        .expect("start the warden")
}

/// Creates a parent and [`NODES`] children under it in one transaction; returns the
/// children's paths.
async fn make_nodes(warden: &Warden) -> Vec<String> {
    let parent = unique_path("batch");
    let children: Vec<String> = (0..NODES).map(|i| format!("{parent}/n{i:04}")).collect();
    let mut ops = vec![Op::create(&parent, Vec::new(), CreateMode::Persistent)];
    for (i, child) in children.iter().enumerate() {
        ops.push(Op::create(child, data_of(i), CreateMode::Persistent));
    }
    warden.multi(&ops).await.expect("create the nodes");
    children
}

/// Starts reading `paths` in one batch through `proxy` while the proxy drops every reply,
/// and returns once the server has answered every read: none of the replies reached the
/// client, so all the reads were in flight at once. Returns the batch's task, which waits for
/// replies that will not come until the network heals.
async fn batch_in_flight(
    warden: &Warden,
    proxy: &FaultProxy,
    paths: &[String],
) -> JoinHandle<Vec<zkwarden::Result<(bytes::Bytes, zkwarden::Stat)>>> {
    let dropped_before = proxy.stats().bytes_dropped;
    proxy.drop_replies();
    let batch = {
        let warden = warden.clone();
        let paths = paths.to_vec();
        tokio::spawn(async move { warden.get_data_batch(&paths).await })
    };
    await_dropped_reply(
        proxy,
        dropped_before,
        paths.len() as u64 * GET_DATA_REPLY_LEN,
    )
    .await;
    batch
}

/// Reads `paths` in one pipelined batch ([`batch_in_flight`]), then heals the network, which
/// resets the connection under the batch: the reads in flight fail with ConnectionLoss and
/// the client reconnects. Returns the batch's results.
async fn batch_across_a_reset(
    warden: &Warden,
    proxy: &FaultProxy,
    paths: &[String],
) -> Vec<zkwarden::Result<(bytes::Bytes, zkwarden::Stat)>> {
    let batch = batch_in_flight(warden, proxy, paths).await;
    proxy.pass_through();
    within("the batch", batch).await.expect("batch task")
}

/// Every read succeeded, with node `i`'s data at version 0.
fn assert_all_read(reads: Vec<zkwarden::Result<(bytes::Bytes, zkwarden::Stat)>>) {
    assert_eq!(reads.len(), NODES);
    for (i, read) in reads.into_iter().enumerate() {
        let (data, stat) = read.unwrap_or_else(|e| panic!("read {i} failed: {e}"));
        assert_eq!(data, data_of(i), "node {i}");
        assert_eq!(stat.version, 0, "node {i}");
    }
}

/// Retries every 50 ms for as long as it takes.
fn retry_forever() -> RetryConfig {
    RetryConfig::Forever {
        sleep: Duration::from_millis(50),
    }
}

/// A server, a proxy in front of it, a warden with `retry` through the proxy, and the paths
/// of [`NODES`] nodes made with it.
async fn proxied(retry: RetryConfig) -> (ZkServer, FaultProxy, Warden, Vec<String>) {
    let server = start_server().await;
    let proxy = FaultProxy::start(server.addr()).await.expect("start proxy");
    let warden = warden_with(&proxy.connect_string(), retry).await;
    let paths = make_nodes(&warden).await;
    (server, proxy, warden, paths)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipelined_batch_cut_by_a_reset_is_retried_and_completes() {
    let (_server, proxy, warden, paths) = proxied(retry_forever()).await;
    let session = warden.session_id();
    let retries_before = warden.metrics().retries;

    let reads = batch_across_a_reset(&warden, &proxy, &paths).await;

    assert_all_read(reads);
    assert!(
        warden.metrics().retries > retries_before,
        "the reset reads were retried"
    );
    // The reset cost the connection, not the session.
    assert_eq!(warden.session_id(), session);
    warden.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_cut_by_an_expiry_completes_on_the_next_session() {
    let (server, proxy, warden, paths) = proxied(retry_forever()).await;
    let generation = warden.generation();
    let session = warden.client().expect("a session");

    let batch = batch_in_flight(&warden, &proxy, &paths).await;
    // The server ends the session while its replies are held back; once the network heals,
    // the client learns it and the warden builds the next session.
    expire_session(
        &server.connect_string(),
        session.session_id(),
        &session.session_password(),
    )
    .await
    .expect("expire the session");
    proxy.pass_through();
    let reads = within("the batch", batch).await.expect("batch task");

    assert_all_read(reads);
    assert!(
        warden.generation() > generation,
        "the reads were answered on the next session"
    );
    warden.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_retries_every_read_cut_by_a_reset_reports_connection_loss() {
    let (_server, proxy, warden, paths) = proxied(RetryConfig::NTimes {
        n: 0,
        sleep: Duration::from_millis(50),
    })
    .await;

    let reads = batch_across_a_reset(&warden, &proxy, &paths).await;

    assert_eq!(reads.len(), NODES);
    for (i, read) in reads.into_iter().enumerate() {
        assert_eq!(read.map(|_| ()), Err(Error::ConnectionLoss), "read {i}");
    }
    assert_eq!(warden.metrics().retries, 0);
    // The warden goes on: the same batch now reads everything.
    let again = warden.get_data_batch(&paths).await;
    assert!(again.iter().all(Result::is_ok));
    warden.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_path_gets_its_own_typed_result_in_order() {
    let server = start_server().await;
    let warden = warden_with(&server.connect_string(), retry_forever()).await;
    let base = unique_path("batch-typed");
    let readable = format!("{base}-readable");
    let locked = format!("{base}-locked");
    let missing = format!("{base}-missing");
    warden.create(&readable, b"open").await.unwrap();
    warden
        .create(&locked, b"closed")
        .acl(vec![Acl::digest(Perms::ALL, "bob", "not-this-session")])
        .await
        .unwrap();
    let paths = [
        readable.as_str(),
        missing.as_str(),
        "no-leading-slash",
        locked.as_str(),
        readable.as_str(),
    ];
    let retries_before = warden.metrics().retries;

    let reads = warden.get_data_batch(&paths).await;

    assert_eq!(reads.len(), paths.len());
    let mut reads = reads.into_iter();
    assert_eq!(reads.next().unwrap().unwrap().0, &b"open"[..]);
    assert_eq!(reads.next().unwrap().unwrap_err(), Error::NoNode);
    assert!(matches!(
        reads.next().unwrap().unwrap_err(),
        Error::InvalidPath { .. }
    ));
    assert_eq!(reads.next().unwrap().unwrap_err(), Error::NoAuth);
    assert_eq!(reads.next().unwrap().unwrap().0, &b"open"[..]);
    // None of these is worth another attempt.
    assert_eq!(warden.metrics().retries, retries_before);
    // An empty batch is no request at all.
    assert!(warden.get_data_batch::<&str>(&[]).await.is_empty());

    // After the warden closes, every read says so.
    warden.close().await.unwrap();
    let closed = warden.get_data_batch(&[readable.as_str()]).await;
    assert_eq!(closed, vec![Err(Error::Closed)]);
}
