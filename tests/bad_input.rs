//! The bad-input catalogue (docs/bad-input.md): a test for each row that no other test proves
//! on its own (the doc names the tests that cover the rest). Invalid paths against a real server, data at and over the frame limit, sequence
//! names, invalid settings, broken connect strings, unresolvable hosts, and servers that
//! misbehave. Every case must end in a typed error, never a panic or a hang, and the session
//! must survive wherever it can.
#![cfg(feature = "testing")]

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::scripted::{self, Misbehaviour};
use common::*;
use zkwarden::warden::WardenConfig;
use zkwarden::{
    Client, CreateMode, Error, SessionId, SessionPassword, SessionState, SessionStatus, Warden,
};

// ----- helpers ------------------------------------------------------------------------------

/// A fresh server, one client on it and a parent node only this test uses.
async fn setup(prefix: &str) -> (zkwarden::testing::ZkServer, Client, String) {
    let server = start_server().await;
    let client = connect(&server.connect_string()).await;
    let root = unique_path(prefix);
    client
        .create(&root, b"", CreateMode::Persistent)
        .await
        .unwrap();
    (server, client, root)
}

/// Asserts that every path in `bad` is refused on the client with `InvalidPath` naming it and
/// a reason containing `reason`, by a write and by a read, and that after each refusal the
/// same session goes on working: a real create under `root` succeeds.
async fn refused_and_the_session_carries_on(
    client: &Client,
    root: &str,
    mode: CreateMode,
    bad: &[&str],
    reason: &str,
) {
    static AFTER: AtomicU32 = AtomicU32::new(0);
    let session = client.session_id();
    for &path in bad {
        let refusals = [
            ("create", client.create(path, b"x", mode).await.unwrap_err()),
            (
                "get_data",
                client.get_data(path).await.map(|_| ()).unwrap_err(),
            ),
        ];
        for (op, err) in refusals {
            match &err {
                Error::InvalidPath { path: p, reason: r } => {
                    assert_eq!(p, path, "{op}");
                    assert!(r.contains(reason), "{op}({path:?}): reason {r:?}");
                }
                other => panic!("{op}({path:?}): expected InvalidPath, got {other:?}"),
            }
            assert!(err.is_invalid_request() && err.is_not_applied());
        }
        // The session did not notice: still connected, same id, and the next op works.
        assert_eq!(client.session_state(), SessionState::Connected, "{path:?}");
        let parent = root.trim_end_matches('/');
        let next = format!("{parent}/after-{}", AFTER.fetch_add(1, Ordering::Relaxed));
        let made = client
            .create(&next, b"ok", CreateMode::Persistent)
            .await
            .unwrap_or_else(|e| panic!("create after refusing {path:?}: {e}"));
        assert_eq!(made, next);
    }
    assert_eq!(client.session_id(), session);
}

/// Connects to a scripted peer that misbehaves with `behaviour`.
async fn connect_to_peer(behaviour: Misbehaviour) -> Client {
    init_tracing();
    let addr = scripted::start(behaviour).await;
    within(
        "handshake with the scripted peer",
        Client::builder(&addr)
            .session_timeout(Duration::from_secs(4))
            .connect(),
    )
    .await
    .expect("handshake with the scripted peer")
}

/// Waits until the client has reconnected (a second connection) to the same session.
async fn reconnected(client: &Client) -> SessionStatus {
    let mut states = client.state();
    let status = within(
        "reconnect to the same session",
        states.wait_for(|s| s.connections >= 2 && s.state == SessionState::Connected),
    )
    .await
    .map(|s| *s)
    .expect("the session ended instead of reconnecting");
    assert_eq!(status.session_id, SessionId(scripted::SESSION_ID));
    status
}

/// Sends one request to a peer that answers it with a frame the client must refuse, and
/// checks the refusal: `ConnectionLoss` (the peer keeps the socket open, so the client's own
/// check ends the connection), then a reconnect to the same session.
async fn bad_frame_drops_only_the_connection(behaviour: Misbehaviour) {
    let client = connect_to_peer(behaviour).await;
    let outcome = within("request against a misbehaving peer", client.exists("/x")).await;
    assert_eq!(outcome.unwrap_err(), Error::ConnectionLoss, "{behaviour:?}");
    reconnected(&client).await;
    assert!(!client.session_state().is_terminal());
}

// ----- paths ----------------------------------------------------------------------------------

#[tokio::test]
async fn empty_path_is_refused_and_the_session_carries_on() {
    let (_server, client, root) = setup("bad-empty").await;
    refused_and_the_session_carries_on(&client, &root, CreateMode::Persistent, &[""], "empty")
        .await;
}

#[tokio::test]
async fn relative_path_is_refused_and_the_session_carries_on() {
    let (server, client, root) = setup("bad-relative").await;
    refused_and_the_session_carries_on(
        &client,
        &root,
        CreateMode::Persistent,
        &["a", "a/b", "zookeeper", " /a", "\0/a"],
        "must start with '/'",
    )
    .await;
    // A chroot does not make relative paths acceptable: paths are checked before the prefix
    // goes on.
    let chrooted = connect(&format!("{}{root}", server.connect_string())).await;
    refused_and_the_session_carries_on(
        &chrooted,
        "/",
        CreateMode::Persistent,
        &["inside"],
        "must start with '/'",
    )
    .await;
}

#[tokio::test]
async fn trailing_slash_and_empty_segments_are_refused_and_the_session_carries_on() {
    let (_server, client, root) = setup("bad-slash").await;
    refused_and_the_session_carries_on(
        &client,
        &root,
        CreateMode::Persistent,
        &["/a/", "//", &format!("{root}/")],
        "must not end with '/'",
    )
    .await;
    refused_and_the_session_carries_on(
        &client,
        &root,
        CreateMode::Persistent,
        &["/a//b", "//a"],
        "empty segment",
    )
    .await;
    // A sequential create may end in one '/' (the server appends the number), not two, and
    // needs something to number.
    refused_and_the_session_carries_on(
        &client,
        &root,
        CreateMode::PersistentSequential,
        &[&format!("{root}//")],
        "must not end with '/'",
    )
    .await;
    let err = client
        .create("/", b"", CreateMode::PersistentSequential)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidPath { .. }), "{err:?}");
    let numbered = client
        .create(&format!("{root}/"), b"", CreateMode::PersistentSequential)
        .await
        .unwrap();
    // Numbered by the parent's child changes so far (the `after-` nodes; refusals made none).
    let suffix = numbered.strip_prefix(&format!("{root}/")).unwrap();
    assert_eq!(suffix.len(), 10, "{numbered}");
    assert!(suffix.bytes().all(|b| b.is_ascii_digit()), "{numbered}");
}

#[tokio::test]
async fn dot_segments_are_refused_and_the_session_carries_on() {
    let (_server, client, root) = setup("bad-dots").await;
    refused_and_the_session_carries_on(
        &client,
        &root,
        CreateMode::Persistent,
        &[
            "/.",
            "/..",
            "/a/./b",
            "/a/../b",
            &format!("{root}/."),
            &format!("{root}/.."),
        ],
        "'.' and '..'",
    )
    .await;
    // Names that merely contain dots are ordinary names, for the server too.
    for name in [".hidden", "..two", "...", "a.b", "x.."] {
        let path = format!("{root}/{name}");
        assert_eq!(
            client
                .create(&path, b"", CreateMode::Persistent)
                .await
                .unwrap(),
            path
        );
    }
}

#[tokio::test]
async fn nul_in_a_path_is_refused_and_the_session_carries_on() {
    let (_server, client, root) = setup("bad-nul").await;
    refused_and_the_session_carries_on(
        &client,
        &root,
        CreateMode::Persistent,
        &["/\0", "/a\0b", &format!("{root}/x\0")],
        "NUL",
    )
    .await;
}

#[tokio::test]
async fn disallowed_unicode_is_refused_and_the_session_carries_on() {
    let (_server, client, root) = setup("bad-unicode").await;
    let bad: Vec<String> = [
        '\u{1}',
        '\u{1f}',
        '\u{7f}',
        '\u{85}',
        '\u{9f}',
        '\u{e000}',
        '\u{f8ff}',
        '\u{fff0}',
        '\u{fffd}',
        '\u{ffff}',
        // Outside the Basic Multilingual Plane: Java sees a surrogate pair (U+D800..U+DFFF),
        // which the server's path check refuses.
        '\u{10000}',
        '\u{1f600}',
        '\u{10ffff}',
    ]
    .iter()
    .map(|c| format!("{root}/x{c}y"))
    .collect();
    let bad: Vec<&str> = bad.iter().map(String::as_str).collect();
    refused_and_the_session_carries_on(
        &client,
        &root,
        CreateMode::Persistent,
        &bad,
        "does not allow",
    )
    .await;
    // The characters around those ranges are fine, and the server agrees.
    for name in [
        "ünïcode",
        "日本語",
        "no\u{a0}break",
        "\u{d7ff}",
        "\u{f900}",
        "\u{ffef}",
    ] {
        let path = format!("{root}/{name}");
        let made = client
            .create(&path, name.as_bytes(), CreateMode::Persistent)
            .await
            .unwrap_or_else(|e| panic!("create {path:?}: {e}"));
        assert_eq!(made, path);
        assert_eq!(
            &client.get_data(&path).await.unwrap().0[..],
            name.as_bytes()
        );
    }
}

// ----- data and the frame limit ---------------------------------------------------------------

#[tokio::test]
async fn data_exactly_at_the_frame_limit_is_sent_and_one_byte_more_is_refused() {
    let server = start_server().await;
    let limit = 64 * 1024;
    let client = Client::builder(server.connect_string())
        .session_timeout(SESSION_TIMEOUT)
        .max_frame_len(limit)
        .connect()
        .await
        .unwrap();
    let node = unique_path("frame-limit");
    client
        .create(&node, b"", CreateMode::Persistent)
        .await
        .unwrap();
    let session = client.session_id();

    // A setData frame (after the 4-byte length prefix): request header (xid, op: 8 bytes),
    // path (4 + len), data (4 + len), version (4).
    let overhead = 8 + (4 + node.len()) + 4 + 4;
    let fits = vec![0x5au8; limit - overhead];
    let stat = client.set_data(&node, &fits, None).await.unwrap();
    assert_eq!(stat.data_length as usize, fits.len());

    let one_more = vec![0x5au8; limit - overhead + 1];
    let err = client.set_data(&node, &one_more, None).await.unwrap_err();
    assert_eq!(
        err,
        Error::DataTooLarge {
            len: limit + 1,
            limit
        }
    );
    assert!(err.is_not_applied());
    // Nothing was sent: the node still holds the first write, and the session goes on.
    assert_eq!(client.session_state(), SessionState::Connected);
    assert_eq!(client.session_id(), session);
    assert_eq!(client.exists(&node).await.unwrap().unwrap().version, 1);
}

#[tokio::test]
async fn data_written_at_the_limit_reads_back_and_a_larger_reply_drops_only_the_connection() {
    let server = start_server().await;
    let limit = 64 * 1024;
    let small = Client::builder(server.connect_string())
        .session_timeout(SESSION_TIMEOUT)
        .max_frame_len(limit)
        .connect()
        .await
        .unwrap();
    let node = unique_path("reply-limit");
    // Data that fills a request to the limit makes a getData reply a little over it (a 16-byte
    // header and a 68-byte stat around the data): replies get a few KiB of slack, so what a
    // client can write it can read back.
    let overhead = 8 + (4 + node.len()) + 4 + 4;
    let at_limit = vec![1u8; limit - overhead];
    small
        .create(&node, b"", CreateMode::Persistent)
        .await
        .unwrap();
    small.set_data(&node, &at_limit, None).await.unwrap();
    assert_eq!(small.get_data(&node).await.unwrap().0.len(), at_limit.len());

    // A client with a larger limit writes more than this one can ever read.
    let big = connect(&server.connect_string()).await;
    let too_big = vec![2u8; limit + 8 * 1024];
    big.set_data(&node, &too_big, None).await.unwrap();

    let session = small.session_id();
    let mut states = small.state();
    let before = states.borrow().connections;
    let err = within("read of an oversized reply", small.get_data(&node))
        .await
        .unwrap_err();
    assert_eq!(err, Error::ConnectionLoss);
    let status = within(
        "reconnect after the oversized reply",
        states.wait_for(|s| s.connections > before && s.state == SessionState::Connected),
    )
    .await
    .map(|s| *s)
    .unwrap();
    assert_eq!(status.session_id, session);
    // The session is intact; only reads of that node are out of this client's reach.
    assert_eq!(
        small.exists(&node).await.unwrap().unwrap().data_length as usize,
        too_big.len()
    );
}

#[tokio::test]
async fn credentials_over_the_frame_limit_are_refused_and_the_session_carries_on() {
    let server = start_server().await;
    let limit = 64 * 1024;
    let client = Client::builder(server.connect_string())
        .session_timeout(SESSION_TIMEOUT)
        .max_frame_len(limit)
        .connect()
        .await
        .unwrap();
    let session = client.session_id();
    let huge = vec![b'a'; limit];
    let err = client.add_auth("digest", &huge).await.unwrap_err();
    assert!(
        matches!(err, Error::DataTooLarge { limit: l, .. } if l == limit),
        "{err:?}"
    );
    // Refused before sending, so not remembered for reconnects either; the session goes on.
    assert_eq!(client.session_state(), SessionState::Connected);
    assert_eq!(client.session_id(), session);
    client.add_auth("digest", b"erin:fits").await.unwrap();
    let users: Vec<String> = client
        .who_am_i()
        .await
        .unwrap()
        .into_iter()
        .filter(|info| info.auth_scheme == "digest")
        .map(|info| info.user)
        .collect();
    assert_eq!(users, ["erin"]);
}

// ----- sequence names -----------------------------------------------------------------------

#[tokio::test]
async fn sequential_names_carry_a_ten_digit_suffix_from_the_server() {
    let (_server, client, root) = setup("seq-names").await;
    let prefix = format!("{root}/item-");
    for (i, mode) in [
        CreateMode::PersistentSequential,
        CreateMode::EphemeralSequential,
        CreateMode::PersistentSequential,
    ]
    .into_iter()
    .enumerate()
    {
        let name = client.create(&prefix, b"", mode).await.unwrap();
        let suffix = name.strip_prefix(&prefix).expect("prefix kept");
        assert_eq!(suffix.len(), 10, "{name}");
        assert!(suffix.bytes().all(|b| b.is_ascii_digit()), "{name}");
        assert_eq!(suffix.parse::<i64>().unwrap(), i as i64, "{name}");
    }
}

#[tokio::test]
async fn a_sequence_past_i32_max_comes_back_verbatim() {
    // The server numbers children with the parent's cversion, formatted "%010d"; past 2^31
    // changes it wraps and the name ends in "-2147483648". No test can make 2^31 changes, so a
    // scripted peer plays that server. The client hands the name back as it came.
    let wrapped = "/queue/item--2147483648";
    let client = connect_to_peer(Misbehaviour::ReplyWithPath(wrapped)).await;
    let name = within(
        "create against the peer",
        client.create("/queue/item-", b"", CreateMode::PersistentSequential),
    )
    .await
    .unwrap();
    assert_eq!(name, wrapped);
    assert_eq!(client.session_state(), SessionState::Connected);
}

// ----- settings -------------------------------------------------------------------------------

#[tokio::test]
async fn session_timeouts_of_zero_or_past_i32_max_ms_are_refused_at_build_time() {
    init_tracing();
    // An address nobody listens on: nothing may be attempted anyway.
    let addr = "127.0.0.1:9";
    let too_long = Duration::from_millis(i32::MAX as u64 + 1);
    // Under a millisecond counts as zero: the wire carries whole milliseconds.
    for timeout in [
        Duration::ZERO,
        Duration::from_nanos(1),
        Duration::from_micros(999),
        too_long,
        Duration::MAX,
    ] {
        let lazy = Client::builder(addr)
            .session_timeout(timeout)
            .connect_lazy();
        assert!(
            matches!(lazy, Err(Error::InvalidArgument(ref m)) if m.contains("session timeout")),
            "{timeout:?}: {lazy:?}"
        );
        let err = Client::builder(addr)
            .session_timeout(timeout)
            .connect()
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::InvalidArgument(_)),
            "{timeout:?}: {err:?}"
        );
    }
    for timeout in [Duration::ZERO, too_long, Duration::MAX] {
        let err = Warden::builder(addr)
            .session_timeout(timeout)
            .build()
            .unwrap_err();
        assert!(
            matches!(err, Error::InvalidArgument(_)),
            "{timeout:?}: {err:?}"
        );
    }
    // The warden's own check lets a timeout under 1 ms through; its first session refuses it.
    let err = Warden::builder(addr)
        .session_timeout(Duration::from_micros(999))
        .start()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    // The largest timeout the wire can carry is accepted (the server clamps it).
    let max = Duration::from_millis(i32::MAX as u64);
    Client::builder(addr)
        .session_timeout(max)
        .connect_lazy()
        .unwrap()
        .close()
        .await
        .unwrap();
    Warden::builder(addr).session_timeout(max).build().unwrap();
}

#[test]
fn a_negative_session_timeout_cannot_be_expressed() {
    // Timeouts are `Duration`s, which are never negative: a negative value is stopped where
    // it would be converted, before it can reach this crate.
    assert!(Duration::try_from_secs_f64(-1.0).is_err());
    assert!(u64::try_from(-1i64).is_err());
    // Configuration files go through humantime, which has no negative durations either.
    let parsed = toml::from_str::<WardenConfig>("connect = \"a:1\"\nsession_timeout = \"-5s\"");
    assert!(parsed.is_err(), "{parsed:?}");
}

#[tokio::test]
async fn other_invalid_settings_are_refused_at_build_time() {
    let addr = "127.0.0.1:9";
    let cases = [
        (
            "zero connect timeout",
            Client::builder(addr).connect_timeout(Duration::ZERO),
        ),
        (
            "zero reconnect backoff minimum",
            Client::builder(addr).reconnect_backoff(Duration::ZERO, Duration::from_secs(1)),
        ),
        (
            "frame limit under 1 KiB",
            Client::builder(addr).max_frame_len(1023),
        ),
        (
            "frame limit past i32::MAX",
            Client::builder(addr).max_frame_len(i32::MAX as usize + 1),
        ),
    ];
    for (what, builder) in cases {
        let err = builder.connect_lazy().unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{what}: {err:?}");
        assert!(err.is_invalid_request(), "{what}");
    }
}

// ----- connect strings and names --------------------------------------------------------------

#[tokio::test]
async fn malformed_connect_strings_are_refused_by_every_entry_point() {
    init_tracing();
    let password = SessionPassword::new(vec![0u8; 16]);
    for input in [
        "",
        "   ",
        ",",
        "/chroot-only",
        "host:0",
        "host:99999",
        "host:abc",
        "host:",
        ":2181",
        "host:-1",
        "[::1",
        "::1:2181",
        "host:2181/bad/",
        "host:2181/a/../b",
    ] {
        let check = |what: &str, err: Error| match err {
            Error::InvalidConnectString {
                input: given,
                reason,
            } => {
                assert_eq!(given, input, "{what}");
                assert!(!reason.is_empty(), "{what}");
            }
            other => panic!("{what}({input:?}): expected InvalidConnectString, got {other:?}"),
        };
        check("connect", Client::connect(input).await.unwrap_err());
        check(
            "connect_lazy",
            Client::builder(input).connect_lazy().unwrap_err(),
        );
        check("warden", Warden::builder(input).build().unwrap_err());
        let lazy = Client::builder("127.0.0.1:1").connect_lazy().unwrap();
        check("update_hosts", lazy.update_hosts(input).unwrap_err());
        assert_eq!(lazy.hosts().len(), 1, "a refused list changes nothing");
        let _ = lazy.close().await;
        check(
            "close_session",
            zkwarden::client::close_session(input, SessionId(1), &password, Duration::from_secs(1))
                .await
                .unwrap_err(),
        );
        check(
            "expire_session",
            zkwarden::testing::expire_session(input, SessionId(1), &password)
                .await
                .unwrap_err(),
        );
    }
}

#[tokio::test]
async fn an_unresolvable_host_is_connect_failed_within_the_connect_timeout() {
    init_tracing();
    let client = Client::builder("no-such-host.invalid:2181")
        .connect_timeout(Duration::from_secs(2))
        .connect_lazy()
        .unwrap();
    let err = within("connect gives up", client.wait_connected())
        .await
        .unwrap_err();
    match err {
        Error::ConnectFailed {
            hosts,
            timeout_ms,
            last_error,
        } => {
            assert_eq!(hosts, ["no-such-host.invalid:2181"]);
            assert_eq!(timeout_ms, 2000);
            // Where DNS answers at once the name is refused; where lookups hang (no resolver
            // reachable), the attempt runs out of time instead. Either way it is named.
            assert!(
                last_error.contains("cannot resolve") || last_error.contains("no handshake"),
                "{last_error}"
            );
            assert!(last_error.contains("no-such-host.invalid"), "{last_error}");
        }
        other => panic!("expected ConnectFailed, got {other:?}"),
    }
    // The client is over (no session was ever made), and says why to every later call.
    assert_eq!(client.session_state(), SessionState::Closed);
    assert!(
        matches!(client.exists("/").await, Err(Error::ConnectFailed { .. })),
        "later calls report the cause"
    );
}

#[tokio::test]
async fn unresolvable_hosts_among_good_ones_are_skipped() {
    let server = start_server().await;
    let connect_string = format!(
        "no-such-host.invalid:2181,{},also-missing.invalid",
        server.connect_string()
    );
    for _ in 0..3 {
        // The order is shuffled on every attempt; whichever comes first, the live server wins.
        let client = within("connect past dead names", connect(&connect_string)).await;
        assert_eq!(client.connected_server(), Some(server.addr()));
        client.sync("/").await.unwrap();
        client.close().await.unwrap();
    }
}

// ----- sessions that cannot be resumed --------------------------------------------------------

#[tokio::test]
async fn resuming_an_unknown_session_is_session_expired() {
    let server = start_server().await;
    let err = within(
        "resume a session the server never had",
        Client::builder(server.connect_string())
            .session_timeout(SESSION_TIMEOUT)
            .resume_session(
                SessionId(0x0bad_5e55_1011),
                SessionPassword::new(vec![9u8; 16]),
            )
            .connect(),
    )
    .await
    .unwrap_err();
    assert_eq!(err, Error::SessionExpired);
}

#[tokio::test]
async fn a_handshake_with_timeout_zero_is_session_expired_for_new_and_resumed_sessions() {
    init_tracing();
    let addr = scripted::start(Misbehaviour::ExpiredHandshake).await;
    let builders = [
        ("new session", Client::builder(&addr)),
        (
            "resumed session",
            Client::builder(&addr)
                .resume_session(SessionId(0x42), SessionPassword::new(vec![1u8; 16])),
        ),
    ];
    for (what, builder) in builders {
        let client = builder.connect_lazy().unwrap();
        let err = within("connect to an expiring peer", client.wait_connected())
            .await
            .unwrap_err();
        assert_eq!(err, Error::SessionExpired, "{what}");
        assert_eq!(client.session_state(), SessionState::Expired, "{what}");
        // Terminal: later operations fail the same way, at once.
        assert_eq!(
            client.exists("/x").await.unwrap_err(),
            Error::SessionExpired,
            "{what}"
        );
    }
    let err = within("connect", Client::connect(&addr)).await.unwrap_err();
    assert_eq!(err, Error::SessionExpired);
}

// ----- servers that misbehave -----------------------------------------------------------------

#[tokio::test]
async fn a_server_that_never_answers_a_request_costs_one_read_timeout_then_the_client_reconnects() {
    init_tracing();
    let (addr, mut handshakes) = scripted::start_counting(Misbehaviour::SilentAfterHandshake).await;
    let client = within(
        "handshake with the scripted peer",
        Client::builder(&addr)
            .session_timeout(Duration::from_secs(4))
            .connect(),
    )
    .await
    .expect("handshake with the scripted peer");
    let read_timeout = Duration::from_millis(scripted::NEGOTIATED_TIMEOUT_MS as u64 * 2 / 3);
    let started = Instant::now();
    let err = within("request to a silent server", client.exists("/x"))
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert_eq!(err, Error::ConnectionLoss);
    // The request was sent just after the handshake, whose arrival starts the read timer.
    assert!(
        took + Duration::from_millis(500) >= read_timeout,
        "failed after {took:?}, before the read timeout {read_timeout:?}"
    );
    assert!(
        took < read_timeout + Duration::from_secs(2),
        "failed after {took:?}, long after the read timeout {read_timeout:?}"
    );
    // The client comes back with the same session at once. It does not report Connected on
    // that connection: a re-attached session counts as connected only once the server has
    // answered it, and this one never answers.
    within("a second handshake", handshakes.wait_for(|n| *n >= 2))
        .await
        .expect("the peer is still listening");
    assert!(!client.session_state().is_terminal());
    assert!(!client.session_state().is_connected());
    assert_eq!(client.session_id(), SessionId(scripted::SESSION_ID));
}

#[tokio::test]
async fn a_watch_notification_with_a_non_utf8_path_drops_only_the_connection() {
    bad_frame_drops_only_the_connection(Misbehaviour::GarbageWatchPath).await;
}

#[tokio::test]
async fn a_negative_frame_length_drops_only_the_connection() {
    bad_frame_drops_only_the_connection(Misbehaviour::NegativeFrameLength).await;
}

#[tokio::test]
async fn a_frame_too_short_for_a_reply_header_drops_only_the_connection() {
    bad_frame_drops_only_the_connection(Misbehaviour::ShortReplyHeader).await;
}

#[tokio::test]
async fn update_hosts_refuses_another_chroot_and_keeps_the_list() {
    let client = Client::builder("127.0.0.1:1/app").connect_lazy().unwrap();
    let before = client.hosts();
    assert!(matches!(
        client.update_hosts("127.0.0.1:2/other"),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(client.hosts(), before);
    // The same chroot, or none, is fine.
    client.update_hosts("127.0.0.1:2/app").unwrap();
    client.update_hosts("127.0.0.1:3,127.0.0.1:4").unwrap();
    let ports: Vec<u16> = client.hosts().iter().map(|h| h.port).collect();
    assert_eq!(ports, [3, 4]);
    let _ = client.close().await;
}
