//! Every operation against a real ZooKeeper server, with its error paths: each create mode,
//! version checks, ACLs and authentication, children and ephemerals, transactions that fail
//! half way, and bad input that must be refused before anything is sent.
#![cfg(feature = "testing")]

mod common;

use std::time::Duration;

use common::*;
use zkwarden::{
    Acl, Client, CreateMode, CreateOptions, Error, ErrorCode, Id, MultiReadOp, Op, OpResult, Perms,
    SessionState,
};

/// Creates an empty persistent node.
async fn mkdir(client: &Client, path: &str) {
    client
        .create(path, b"", CreateMode::Persistent)
        .await
        .unwrap_or_else(|e| panic!("create {path}: {e}"));
}

/// A fresh server, one client on it and a root node only this test uses.
async fn setup(prefix: &str) -> (zkwarden::testing::ZkServer, Client, String) {
    let server = start_server().await;
    let client = connect(&server.connect_string()).await;
    let root = unique_path(prefix);
    mkdir(&client, &root).await;
    (server, client, root)
}

/// The sequence number a sequential create appended after `prefix`: exactly ten digits.
fn sequence_of(path: &str, prefix: &str) -> u32 {
    let suffix = path
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{path} does not start with {prefix}"));
    assert_eq!(suffix.len(), 10, "suffix of {path}");
    assert!(
        suffix.bytes().all(|b| b.is_ascii_digit()),
        "suffix of {path}"
    );
    suffix.parse().unwrap()
}

fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names
}

/// A small SHA-1 (FIPS 180-4), enough to compute ZooKeeper's digest identities.
fn sha1(message: &[u8]) -> [u8; 20] {
    let mut state: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let mut padded = message.to_vec();
    padded.push(0x80);
    while padded.len() % 64 != 56 {
        padded.push(0);
    }
    padded.extend_from_slice(&(message.len() as u64 * 8).to_be_bytes());
    for block in padded.chunks_exact(64) {
        let mut schedule = [0u32; 80];
        for (word, bytes) in schedule.iter_mut().zip(block.chunks_exact(4)) {
            *word = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        for t in 16..80 {
            schedule[t] = (schedule[t - 3] ^ schedule[t - 8] ^ schedule[t - 14] ^ schedule[t - 16])
                .rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = state;
        for (t, word) in schedule.iter().enumerate() {
            let (f, k) = match t {
                0..20 => ((b & c) | (!b & d), 0x5A82_7999),
                20..40 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..60 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let next = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*word);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = next;
        }
        for (s, v) in state.iter_mut().zip([a, b, c, d, e]) {
            *s = s.wrapping_add(v);
        }
    }
    let mut out = [0u8; 20];
    for (chunk, s) in out.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&s.to_be_bytes());
    }
    out
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for group in bytes.chunks(3) {
        let n = group
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= group.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The identity ZooKeeper's digest scheme derives from `user:password`.
fn digest_id(user_password: &str) -> String {
    let user = user_password.split(':').next().unwrap();
    format!("{user}:{}", base64(&sha1(user_password.as_bytes())))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn digest_helpers_match_known_vectors() {
    assert_eq!(
        hex(&sha1(b"abc")),
        "a9993e364706816aba3e25717850c26c9cd0d89d"
    );
    assert_eq!(hex(&sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    // Two blocks of padding.
    assert_eq!(
        hex(&sha1(
            b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
        )),
        "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
    );
    assert_eq!(base64(b"Man"), "TWFu");
    assert_eq!(base64(b"Ma"), "TWE=");
    assert_eq!(base64(b"M"), "TQ==");
    // Checked with `printf super:superpw | openssl dgst -sha1 -binary | base64`.
    assert_eq!(
        digest_id("super:superpw"),
        "super:g9oN2HttPfn8MMWJZ2r45Np/LIA="
    );
}

// ----- create ---------------------------------------------------------------------------

#[tokio::test]
async fn create_in_every_plain_mode() {
    let (server, client, root) = setup("create-modes").await;

    let persistent = client
        .create(&format!("{root}/p"), b"data", CreateMode::Persistent)
        .await
        .unwrap();
    assert_eq!(persistent, format!("{root}/p"));
    let (data, stat) = client.get_data(&persistent).await.unwrap();
    assert_eq!(&data[..], b"data");
    assert_eq!(stat.ephemeral_owner, 0);
    assert_eq!(stat.data_length, 4);
    assert_eq!(stat.version, 0);

    let ephemeral = client
        .create(&format!("{root}/e"), b"", CreateMode::Ephemeral)
        .await
        .unwrap();
    assert_eq!(ephemeral, format!("{root}/e"));
    let stat = client.exists(&ephemeral).await.unwrap().unwrap();
    assert_eq!(stat.ephemeral_owner, client.session_id().0);
    assert_ne!(stat.ephemeral_owner, 0);

    // The sequence number is the parent's child version at the time: two nodes exist already.
    let prefix = format!("{root}/ps-");
    let first = client
        .create(&prefix, b"", CreateMode::PersistentSequential)
        .await
        .unwrap();
    let second = client
        .create(&prefix, b"", CreateMode::PersistentSequential)
        .await
        .unwrap();
    assert_eq!(sequence_of(&first, &prefix), 2);
    assert_eq!(sequence_of(&second, &prefix), 3);
    assert_eq!(
        client
            .exists(&first)
            .await
            .unwrap()
            .unwrap()
            .ephemeral_owner,
        0
    );

    let prefix = format!("{root}/es-");
    let first = client
        .create(&prefix, b"", CreateMode::EphemeralSequential)
        .await
        .unwrap();
    let second = client
        .create(&prefix, b"", CreateMode::EphemeralSequential)
        .await
        .unwrap();
    assert!(sequence_of(&second, &prefix) > sequence_of(&first, &prefix));
    assert_eq!(sequence_of(&first, &prefix), 4);
    for path in [&first, &second] {
        let stat = client.exists(path).await.unwrap().unwrap();
        assert_eq!(stat.ephemeral_owner, client.session_id().0, "{path}");
    }

    let mut children = client.get_children(&root).await.unwrap();
    children.sort();
    assert_eq!(children.len(), 6, "{children:?}");
    assert_eq!(children[..2], ["e".to_owned(), format!("es-{:010}", 4)]);

    // The ephemerals go with the session; the persistent nodes stay.
    client.close().await.unwrap();
    let observer = connect(&server.connect_string()).await;
    let left = sorted(observer.get_children(&root).await.unwrap());
    assert_eq!(
        left,
        vec![
            "p".to_owned(),
            format!("ps-{:010}", 2),
            format!("ps-{:010}", 3)
        ]
    );
}

/// A server that looks for empty containers and expired TTL nodes every 100 ms instead of
/// every minute.
async fn start_server_with_fast_container_checks() -> zkwarden::testing::ZkServer {
    init_tracing();
    blocking(|| {
        zkwarden::testing::ZkServer::builder()
            .extra_config("extendedTypesEnabled", "true")
            .jvm_arg("-Dznode.container.checkIntervalMs=100")
            .start()
    })
    .await
    .expect("start ZooKeeper")
}

#[tokio::test]
async fn create_containers_and_ttl_nodes() {
    let server = start_server_with_fast_container_checks().await;
    let client = connect(&server.connect_string()).await;
    let root = unique_path("create-extended");
    mkdir(&client, &root).await;

    let container = client
        .create(&format!("{root}/c"), b"box", CreateMode::Container)
        .await
        .unwrap();
    assert_eq!(container, format!("{root}/c"));
    let (never_used, never_used_stat) = client
        .create2(&format!("{root}/c-unused"), b"", CreateMode::Container)
        .await
        .unwrap();
    let (data, stat) = client.get_data(&container).await.unwrap();
    assert_eq!(&data[..], b"box");
    // The server keeps the container marker to itself: clients see an ordinary owner of 0.
    assert_eq!(stat.ephemeral_owner, 0);
    assert_eq!(never_used_stat.ephemeral_owner, 0);
    let plain = format!("{root}/plain");
    mkdir(&client, &plain).await;
    for parent in [&container, &plain] {
        mkdir(&client, &format!("{parent}/child")).await;
    }
    assert_eq!(
        client
            .exists(&container)
            .await
            .unwrap()
            .unwrap()
            .num_children,
        1
    );

    let long_ttl = CreateOptions::new(CreateMode::PersistentWithTtl).ttl(Duration::from_secs(600));
    let (ttl_node, ttl_stat) = client
        .create2(&format!("{root}/ttl"), b"t", long_ttl.clone())
        .await
        .unwrap();
    assert_eq!(ttl_node, format!("{root}/ttl"));
    assert_eq!(ttl_stat.ephemeral_owner, 0);
    assert_eq!(client.exists(&ttl_node).await.unwrap(), Some(ttl_stat));
    let short_ttl = format!("{root}/short-ttl");
    // A persistent watch sees both the creation and the expiry, however quickly they follow
    // each other.
    let mut watch_short_ttl = client
        .add_watch(&short_ttl, zkwarden::AddWatchMode::Persistent)
        .await
        .unwrap();

    let prefix = format!("{root}/ttl-seq-");
    let first = client
        .create(
            &prefix,
            b"",
            CreateOptions::new(CreateMode::PersistentSequentialWithTtl)
                .ttl(Duration::from_secs(600)),
        )
        .await
        .unwrap();
    let second = client
        .create(
            &prefix,
            b"",
            CreateOptions::new(CreateMode::PersistentSequentialWithTtl)
                .ttl(Duration::from_secs(600)),
        )
        .await
        .unwrap();
    assert_eq!(sequence_of(&first, &prefix), 4);
    assert_eq!(sequence_of(&second, &prefix), 5);

    // The modes show in how the server treats the nodes. A container goes once its last
    // child is gone; a TTL node once it has been unchanged and childless for its TTL.
    let (_, _, watch_container) = client.get_data_and_watch(&container).await.unwrap();
    client
        .create(
            &short_ttl,
            b"",
            CreateOptions::new(CreateMode::PersistentWithTtl).ttl(Duration::from_millis(200)),
        )
        .await
        .unwrap();
    for parent in [&container, &plain] {
        client
            .delete(&format!("{parent}/child"), None)
            .await
            .unwrap();
    }
    let event = within("empty container removed", watch_container)
        .await
        .unwrap();
    assert_eq!(event.event_type, zkwarden::EventType::NodeDeleted);
    assert_eq!(event.path, container);
    let mut seen = Vec::new();
    for what in ["short TTL node created", "expired TTL node removed"] {
        let event = within(what, watch_short_ttl.next()).await.expect(what);
        assert_eq!(event.path, short_ttl);
        seen.push(event.event_type);
    }
    assert_eq!(
        seen,
        [
            zkwarden::EventType::NodeCreated,
            zkwarden::EventType::NodeDeleted
        ]
    );

    // The checks that removed those left the persistent node, the container that never had
    // a child and the TTL nodes whose time has not come.
    for path in [&plain, &never_used, &ttl_node, &first, &second] {
        assert!(client.exists(path).await.unwrap().is_some(), "{path}");
    }
}

#[tokio::test]
async fn create2_returns_the_stat_exists_reports() {
    let (_server, client, root) = setup("create2").await;
    let (path, stat) = client
        .create2(&format!("{root}/n"), b"hello", CreateMode::Persistent)
        .await
        .unwrap();
    assert_eq!(path, format!("{root}/n"));
    assert_eq!(stat.data_length, 5);
    assert_eq!(stat.version, 0);
    assert_eq!(stat.czxid, stat.mzxid);
    assert!(stat.czxid > 0);
    assert_eq!(client.exists(&path).await.unwrap(), Some(stat));

    let (path, stat) = client
        .create2(&format!("{root}/s-"), b"", CreateMode::EphemeralSequential)
        .await
        .unwrap();
    assert_eq!(sequence_of(&path, &format!("{root}/s-")), 1);
    assert_eq!(stat.ephemeral_owner, client.session_id().0);
    assert_eq!(client.exists(&path).await.unwrap(), Some(stat));

    // The parent's stat moved on by two children.
    let (_, parent) = client.get_children2(&root).await.unwrap();
    assert_eq!(parent.num_children, 2);
    assert_eq!(parent.cversion, 2);
    assert_eq!(parent.pzxid, stat.czxid);
}

#[tokio::test]
async fn create_errors_from_the_server() {
    let (_server, client, root) = setup("create-errors").await;
    let node = format!("{root}/n");
    mkdir(&client, &node).await;

    assert_eq!(
        client
            .create(&node, b"", CreateMode::Persistent)
            .await
            .unwrap_err(),
        Error::NodeExists
    );
    assert_eq!(
        client
            .create2(&node, b"", CreateMode::Ephemeral)
            .await
            .unwrap_err(),
        Error::NodeExists
    );
    assert_eq!(
        client
            .create(
                &format!("{root}/missing/child"),
                b"",
                CreateMode::Persistent
            )
            .await
            .unwrap_err(),
        Error::NoNode
    );
    assert_eq!(
        client
            .create(
                &format!("{root}/missing/s-"),
                b"",
                CreateMode::PersistentSequential
            )
            .await
            .unwrap_err(),
        Error::NoNode
    );

    let ephemeral = client
        .create(&format!("{root}/eph"), b"", CreateMode::Ephemeral)
        .await
        .unwrap();
    for mode in [
        CreateMode::Persistent,
        CreateMode::Ephemeral,
        CreateMode::EphemeralSequential,
    ] {
        assert_eq!(
            client
                .create(&format!("{ephemeral}/child"), b"", mode)
                .await
                .unwrap_err(),
            Error::NoChildrenForEphemerals,
            "{mode:?}"
        );
    }

    // `auth` with no authenticated identity on the session, a malformed digest id and an
    // unknown scheme are refused by the server.
    let refused: [Vec<Acl>; 3] = [
        Acl::CREATOR_ALL.to_vec(),
        vec![Acl::new(Perms::ALL, Id::new("digest", "no-colon-here"))],
        vec![Acl::new(Perms::ALL, Id::new("no-such-scheme", "x"))],
    ];
    for acl in refused {
        let path = format!("{root}/acl");
        let err = client
            .create(
                &path,
                b"",
                CreateOptions::new(CreateMode::Persistent).acl(acl.clone()),
            )
            .await
            .unwrap_err();
        assert_eq!(err, Error::InvalidAcl, "{acl:?}");
        assert_eq!(client.exists(&path).await.unwrap(), None);
    }
    assert_eq!(client.session_state(), SessionState::Connected);
}

#[tokio::test]
async fn create_arguments_refused_before_sending() {
    let (_server, client, root) = setup("create-args").await;
    let path = format!("{root}/n");
    let cases = [
        (
            "empty ACL",
            CreateOptions::new(CreateMode::Persistent).acl(Vec::new()),
        ),
        (
            "TTL on a persistent node",
            CreateOptions::new(CreateMode::Persistent).ttl(Duration::from_secs(5)),
        ),
        (
            "TTL on an ephemeral node",
            CreateOptions::new(CreateMode::Ephemeral).ttl(Duration::from_secs(5)),
        ),
        (
            "TTL on a container",
            CreateOptions::new(CreateMode::Container).ttl(Duration::from_secs(5)),
        ),
        (
            "TTL mode without a TTL",
            CreateOptions::new(CreateMode::PersistentWithTtl),
        ),
        (
            "sequential TTL mode without a TTL",
            CreateOptions::new(CreateMode::PersistentSequentialWithTtl),
        ),
        (
            "zero TTL",
            CreateOptions::new(CreateMode::PersistentWithTtl).ttl(Duration::ZERO),
        ),
    ];
    for (what, options) in cases {
        let err = client
            .create(&path, b"", options.clone())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{what}: {err:?}");
        assert!(err.is_invalid_request(), "{what}");
        let err = client
            .create2(&path, b"", options.clone())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{what}: {err:?}");
        let err = client
            .multi(&[Op::create(path.clone(), b"".to_vec(), options)])
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{what}: {err:?}");
    }
    // Nothing reached the server: the parent was never touched.
    let (children, stat) = client.get_children2(&root).await.unwrap();
    assert!(children.is_empty());
    assert_eq!(stat.cversion, 0);
    assert_eq!(client.session_state(), SessionState::Connected);
}

#[tokio::test]
async fn sequential_create_under_a_parent_with_a_trailing_slash() {
    let (_server, client, root) = setup("seq-slash").await;
    let parent_slash = format!("{root}/");
    let first = client
        .create(&parent_slash, b"a", CreateMode::PersistentSequential)
        .await
        .unwrap();
    assert_eq!(first, format!("{root}/0000000000"));
    let (second, _) = client
        .create2(&parent_slash, b"b", CreateMode::EphemeralSequential)
        .await
        .unwrap();
    assert_eq!(second, format!("{root}/0000000001"));
    assert_eq!(&client.get_data(&first).await.unwrap().0[..], b"a");
    // Without a sequential mode the same path is invalid.
    let err = client
        .create(&parent_slash, b"", CreateMode::Persistent)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidPath { .. }), "{err:?}");
}

// ----- delete, exists, data ---------------------------------------------------------------

#[tokio::test]
async fn delete_and_its_errors() {
    let (_server, client, root) = setup("delete").await;
    let plain = format!("{root}/plain");
    mkdir(&client, &plain).await;
    client.delete(&plain, None).await.unwrap();
    assert_eq!(client.exists(&plain).await.unwrap(), None);
    assert_eq!(
        client.delete(&plain, None).await.unwrap_err(),
        Error::NoNode
    );
    assert_eq!(
        client.delete(&plain, Some(0)).await.unwrap_err(),
        Error::NoNode
    );

    let versioned = format!("{root}/versioned");
    mkdir(&client, &versioned).await;
    client.set_data(&versioned, b"v1", None).await.unwrap();
    assert_eq!(
        client.delete(&versioned, Some(0)).await.unwrap_err(),
        Error::BadVersion
    );
    assert_eq!(
        client.delete(&versioned, Some(2)).await.unwrap_err(),
        Error::BadVersion
    );
    assert!(client.exists(&versioned).await.unwrap().is_some());
    client.delete(&versioned, Some(1)).await.unwrap();
    assert_eq!(client.exists(&versioned).await.unwrap(), None);

    let parent = format!("{root}/parent");
    mkdir(&client, &parent).await;
    mkdir(&client, &format!("{parent}/child")).await;
    assert_eq!(
        client.delete(&parent, None).await.unwrap_err(),
        Error::NotEmpty
    );
    client
        .delete(&format!("{parent}/child"), Some(0))
        .await
        .unwrap();
    client.delete(&parent, Some(0)).await.unwrap();

    let err = client.delete("/", None).await.unwrap_err();
    assert!(
        matches!(&err, Error::InvalidPath { path, .. } if path == "/"),
        "{err:?}"
    );
    assert!(client.exists("/").await.unwrap().is_some());
    assert_eq!(
        client.get_children(&root).await.unwrap(),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn exists_get_data_and_set_data() {
    let (_server, client, root) = setup("data").await;
    let node = format!("{root}/n");
    assert_eq!(client.exists(&node).await.unwrap(), None);
    assert_eq!(client.get_data(&node).await.unwrap_err(), Error::NoNode);
    assert_eq!(
        client.set_data(&node, b"x", None).await.unwrap_err(),
        Error::NoNode
    );

    let (_, created) = client
        .create2(&node, b"first", CreateMode::Persistent)
        .await
        .unwrap();
    let (data, stat) = client.get_data(&node).await.unwrap();
    assert_eq!(&data[..], b"first");
    assert_eq!(stat, created);

    let s1 = client.set_data(&node, b"second", Some(0)).await.unwrap();
    assert_eq!(s1.version, 1);
    assert_eq!(s1.data_length, 6);
    assert_eq!(s1.czxid, created.czxid);
    assert!(s1.mzxid > created.mzxid);
    assert_eq!(
        client.set_data(&node, b"stale", Some(0)).await.unwrap_err(),
        Error::BadVersion
    );
    assert_eq!(
        client
            .set_data(&node, b"future", Some(5))
            .await
            .unwrap_err(),
        Error::BadVersion
    );
    let s2 = client.set_data(&node, b"", None).await.unwrap();
    assert_eq!(s2.version, 2);
    assert_eq!(s2.data_length, 0);
    let s3 = client.set_data(&node, b"third", Some(2)).await.unwrap();
    assert_eq!(s3.version, 3);

    let (data, stat) = client.get_data(&node).await.unwrap();
    assert_eq!(&data[..], b"third");
    assert_eq!(stat, s3);
    assert_eq!(client.exists(&node).await.unwrap(), Some(s3));

    // Binary data survives unchanged, including bytes that are not UTF-8.
    let binary: Vec<u8> = (0..=255u8).collect();
    client.set_data(&node, &binary, None).await.unwrap();
    assert_eq!(client.get_data(&node).await.unwrap().0[..], binary[..]);
}

// ----- ACLs and authentication ------------------------------------------------------------

#[tokio::test]
async fn acls_guard_nodes_until_the_right_credentials_arrive() {
    let server = start_server().await;
    let cs = server.connect_string();
    let owner = connect(&cs).await;
    let stranger = connect(&cs).await;
    let root = unique_path("acl");
    mkdir(&owner, &root).await;
    let node = format!("{root}/secret");

    owner.add_auth("digest", b"user:pw").await.unwrap();
    owner
        .create(
            &node,
            b"hidden",
            CreateOptions::new(CreateMode::Persistent).acl(Acl::CREATOR_ALL),
        )
        .await
        .unwrap();
    // The server expands `auth` into the session's digest identity.
    let digest = Id::new("digest", digest_id("user:pw"));
    let (acl, stat) = owner.get_acl(&node).await.unwrap();
    assert_eq!(acl, vec![Acl::new(Perms::ALL, digest.clone())]);
    assert_eq!(stat.aversion, 0);
    assert_eq!(&owner.get_data(&node).await.unwrap().0[..], b"hidden");

    // Without credentials nothing is allowed, not even reading the ACL.
    assert_eq!(stranger.get_data(&node).await.unwrap_err(), Error::NoAuth);
    assert_eq!(
        stranger.set_data(&node, b"x", None).await.unwrap_err(),
        Error::NoAuth
    );
    assert_eq!(stranger.get_acl(&node).await.unwrap_err(), Error::NoAuth);
    assert_eq!(
        stranger
            .set_acl(&node, Acl::OPEN_UNSAFE, None)
            .await
            .unwrap_err(),
        Error::NoAuth
    );
    assert_eq!(
        stranger
            .create(&format!("{node}/child"), b"", CreateMode::Persistent)
            .await
            .unwrap_err(),
        Error::NoAuth
    );
    assert_eq!(
        stranger.get_children(&node).await.unwrap_err(),
        Error::NoAuth
    );
    // exists needs no permission.
    assert_eq!(stranger.exists(&node).await.unwrap(), Some(stat));

    // A wrong password is accepted as an identity, just not the one the ACL names.
    stranger.add_auth("digest", b"user:wrong").await.unwrap();
    assert_eq!(stranger.get_data(&node).await.unwrap_err(), Error::NoAuth);

    let friend = connect(&cs).await;
    friend.add_auth("digest", b"user:pw").await.unwrap();
    assert_eq!(&friend.get_data(&node).await.unwrap().0[..], b"hidden");
    assert_eq!(
        friend
            .set_data(&node, b"shared", None)
            .await
            .unwrap()
            .version,
        1
    );

    // set_acl with an explicit digest entry plus read for everyone, version-checked.
    let readable = vec![
        Acl::new(Perms::ALL, digest.clone()),
        Acl::new(Perms::READ, Id::ANYONE),
    ];
    let after = owner.set_acl(&node, &readable, Some(0)).await.unwrap();
    assert_eq!(after.aversion, 1);
    assert_eq!(after.version, 1);
    assert_eq!(
        owner.set_acl(&node, &readable, Some(0)).await.unwrap_err(),
        Error::BadVersion
    );
    assert_eq!(owner.get_acl(&node).await.unwrap(), (readable, after));

    // Now anyone may read, and sees the digest entry with its hash hidden.
    assert_eq!(&stranger.get_data(&node).await.unwrap().0[..], b"shared");
    assert_eq!(
        stranger.set_data(&node, b"x", None).await.unwrap_err(),
        Error::NoAuth
    );
    let (seen, _) = stranger.get_acl(&node).await.unwrap();
    assert_eq!(
        seen,
        vec![
            Acl::new(Perms::ALL, Id::new("digest", "user:x")),
            Acl::new(Perms::READ, Id::ANYONE),
        ]
    );

    // set_acl's other errors.
    assert_eq!(
        owner
            .set_acl(&format!("{root}/missing"), Acl::OPEN_UNSAFE, None)
            .await
            .unwrap_err(),
        Error::NoNode
    );
    assert_eq!(
        owner.set_acl(&node, &[], None).await.unwrap_err(),
        Error::InvalidAcl
    );
    let anonymous = connect(&cs).await;
    assert_eq!(
        anonymous
            .set_acl(&root, Acl::CREATOR_ALL, None)
            .await
            .unwrap_err(),
        Error::InvalidAcl,
        "`auth` needs an identity whose scheme can be expanded"
    );
    assert_eq!(owner.get_acl(&node).await.unwrap().1.aversion, 1);
    assert_eq!(
        owner.get_acl(&format!("{root}/missing")).await.unwrap_err(),
        Error::NoNode
    );
}

#[tokio::test]
async fn add_auth_and_who_am_i() {
    let (_server, client, _root) = setup("whoami").await;
    let before = client.who_am_i().await.unwrap();
    assert!(
        before.iter().all(|info| info.auth_scheme != "digest"),
        "{before:?}"
    );
    assert!(
        before
            .iter()
            .any(|info| info.auth_scheme == "ip" && info.user == "127.0.0.1"),
        "{before:?}"
    );

    client.add_auth("digest", b"alice:secret").await.unwrap();
    let after = client.who_am_i().await.unwrap();
    let digests: Vec<_> = after
        .iter()
        .filter(|info| info.auth_scheme == "digest")
        .map(|info| info.user.as_str())
        .collect();
    assert_eq!(digests, ["alice"], "{after:?}");

    // The same credentials twice do not make a second identity.
    client.add_auth("digest", b"alice:secret").await.unwrap();
    client.add_auth("digest", b"bob:other").await.unwrap();
    let mut digests: Vec<_> = client
        .who_am_i()
        .await
        .unwrap()
        .into_iter()
        .filter(|info| info.auth_scheme == "digest")
        .map(|info| info.user)
        .collect();
    digests.sort();
    assert_eq!(digests, ["alice", "bob"]);

    let err = client.add_auth("", b"x").await.unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    assert_eq!(client.session_state(), SessionState::Connected);
}

// ----- children, ephemerals, sync, check --------------------------------------------------

#[tokio::test]
async fn children_and_descendant_counts() {
    let (_server, client, root) = setup("children").await;
    for name in ["a", "b", "c"] {
        mkdir(&client, &format!("{root}/{name}")).await;
    }
    for name in ["x", "y"] {
        mkdir(&client, &format!("{root}/a/{name}")).await;
    }
    mkdir(&client, &format!("{root}/a/x/deep")).await;

    assert_eq!(
        sorted(client.get_children(&root).await.unwrap()),
        ["a", "b", "c"]
    );
    let (children, stat) = client.get_children2(&root).await.unwrap();
    assert_eq!(sorted(children), ["a", "b", "c"]);
    assert_eq!(stat.num_children, 3);
    assert_eq!(stat.cversion, 3);
    assert_eq!(stat, client.exists(&root).await.unwrap().unwrap());
    let (leaf_children, leaf) = client.get_children2(&format!("{root}/b")).await.unwrap();
    assert!(leaf_children.is_empty());
    assert_eq!(leaf.num_children, 0);

    assert_eq!(client.get_all_children_number(&root).await.unwrap(), 6);
    assert_eq!(
        client
            .get_all_children_number(&format!("{root}/a"))
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        client
            .get_all_children_number(&format!("{root}/c"))
            .await
            .unwrap(),
        0
    );

    let missing = format!("{root}/missing");
    assert_eq!(
        client.get_children(&missing).await.unwrap_err(),
        Error::NoNode
    );
    assert_eq!(
        client.get_children2(&missing).await.unwrap_err(),
        Error::NoNode
    );
    assert_eq!(
        client.get_all_children_number(&missing).await.unwrap_err(),
        Error::NoNode
    );
}

#[tokio::test]
async fn get_ephemerals_lists_only_this_sessions_nodes() {
    let (server, client, root) = setup("ephemerals").await;
    let other = connect(&server.connect_string()).await;
    mkdir(&client, &format!("{root}/sub")).await;
    mkdir(&client, &format!("{root}/persistent")).await;
    let mine = [
        client
            .create(&format!("{root}/e1"), b"", CreateMode::Ephemeral)
            .await
            .unwrap(),
        client
            .create(
                &format!("{root}/sub/e-"),
                b"",
                CreateMode::EphemeralSequential,
            )
            .await
            .unwrap(),
    ];
    let theirs = other
        .create(&format!("{root}/e2"), b"", CreateMode::Ephemeral)
        .await
        .unwrap();

    assert_eq!(sorted(client.get_ephemerals(&root).await.unwrap()), mine);
    assert_eq!(
        client.get_ephemerals(&format!("{root}/sub")).await.unwrap(),
        [mine[1].clone()]
    );
    // A plain string prefix, not a path: "{root}/e" matches "{root}/e1".
    assert_eq!(
        client.get_ephemerals(&format!("{root}/e")).await.unwrap(),
        [mine[0].clone()]
    );
    assert_eq!(other.get_ephemerals(&root).await.unwrap(), [theirs]);
    // "/" means every ephemeral of the session.
    assert_eq!(sorted(client.get_ephemerals("/").await.unwrap()), mine);
    assert!(
        client
            .get_ephemerals(&format!("{root}/persistent"))
            .await
            .unwrap()
            .is_empty()
    );
    let err = client.get_ephemerals("relative").await.unwrap_err();
    assert!(matches!(err, Error::InvalidPath { .. }), "{err:?}");
}

#[tokio::test]
async fn sync_and_check() {
    let (server, client, root) = setup("sync-check").await;
    let writer = connect(&server.connect_string()).await;
    let node = format!("{root}/n");
    writer
        .create(&node, b"", CreateMode::Persistent)
        .await
        .unwrap();
    writer.set_data(&node, b"v1", None).await.unwrap();
    client.sync(&node).await.unwrap();
    assert_eq!(&client.get_data(&node).await.unwrap().0[..], b"v1");
    client.sync("/").await.unwrap();
    // sync does not care whether the node exists.
    client.sync(&format!("{root}/missing")).await.unwrap();

    client.check(&node, None).await.unwrap();
    client.check(&node, Some(1)).await.unwrap();
    assert_eq!(
        client.check(&node, Some(0)).await.unwrap_err(),
        Error::BadVersion
    );
    assert_eq!(
        client
            .check(&format!("{root}/missing"), None)
            .await
            .unwrap_err(),
        Error::NoNode
    );
    assert_eq!(
        client
            .check(&format!("{root}/missing"), Some(0))
            .await
            .unwrap_err(),
        Error::NoNode
    );
}

// ----- multi ------------------------------------------------------------------------------

#[tokio::test]
async fn multi_applies_every_op_and_reports_each_result() {
    let (_server, client, root) = setup("multi-ok").await;
    let existing = format!("{root}/existing");
    let checked = format!("{root}/checked");
    let doomed = format!("{root}/doomed");
    for path in [&existing, &checked, &doomed] {
        mkdir(&client, path).await;
    }
    client.set_data(&checked, b"c", None).await.unwrap();

    let results = client
        .multi(&[
            Op::create(
                format!("{root}/new"),
                b"fresh".to_vec(),
                CreateMode::Persistent,
            ),
            Op::create(
                format!("{root}/seq-"),
                b"".to_vec(),
                CreateMode::EphemeralSequential,
            ),
            Op::set_data(existing.clone(), b"updated".to_vec(), Some(0)),
            Op::check(checked.clone(), Some(1)),
            Op::delete(doomed.clone(), Some(0)),
            // Later ops see the earlier ones: the node created above can be checked.
            Op::check(format!("{root}/new"), Some(0)),
            Op::create(format!("{root}/box"), b"".to_vec(), CreateMode::Container),
            Op::create(
                format!("{root}/ttl"),
                b"".to_vec(),
                CreateOptions::new(CreateMode::PersistentWithTtl).ttl(Duration::from_secs(600)),
            ),
        ])
        .await
        .unwrap();
    assert_eq!(results.len(), 8);

    // ZooKeeper 3.8 answers a plain create inside a transaction with the path alone, even
    // when asked for create2; containers and TTL nodes come with their stat.
    let OpResult::Create {
        path,
        stat: plain_stat,
    } = &results[0]
    else {
        panic!("create result: {:?}", results[0]);
    };
    assert_eq!(path, &format!("{root}/new"));
    let (data, new_stat) = client.get_data(path).await.unwrap();
    assert_eq!(&data[..], b"fresh");
    if let Some(stat) = plain_stat {
        assert_eq!(stat, &new_stat);
    }

    let OpResult::Create { path: seq_path, .. } = &results[1] else {
        panic!("create result: {:?}", results[1]);
    };
    assert_eq!(sequence_of(seq_path, &format!("{root}/seq-")), 4);
    assert_eq!(
        client
            .exists(seq_path)
            .await
            .unwrap()
            .unwrap()
            .ephemeral_owner,
        client.session_id().0
    );

    let OpResult::SetData { stat: set_stat } = &results[2] else {
        panic!("set_data result: {:?}", results[2]);
    };
    assert_eq!(set_stat.version, 1);
    let (data, stat) = client.get_data(&existing).await.unwrap();
    assert_eq!(&data[..], b"updated");
    assert_eq!(&stat, set_stat);

    assert_eq!(results[3], OpResult::Check);
    assert_eq!(results[4], OpResult::Delete);
    assert_eq!(results[5], OpResult::Check);
    assert_eq!(client.exists(&doomed).await.unwrap(), None);

    for (i, name) in [(6, "box"), (7, "ttl")] {
        let path = format!("{root}/{name}");
        let stat = client.exists(&path).await.unwrap();
        assert!(stat.is_some(), "{name}");
        assert_eq!(
            results[i],
            OpResult::Create {
                path: path.clone(),
                stat
            },
            "{name}"
        );
    }

    // Every op was one transaction: they share a zxid.
    assert_eq!(new_stat.czxid, set_stat.mzxid);

    // An empty transaction is allowed and does nothing.
    assert_eq!(client.multi(&[]).await.unwrap(), Vec::<OpResult>::new());
}

#[tokio::test]
async fn multi_with_a_failing_op_applies_nothing() {
    let (_server, client, root) = setup("multi-fail").await;
    let existing = format!("{root}/existing");
    mkdir(&client, &existing).await;
    let (a, b, c) = (
        format!("{root}/a"),
        format!("{root}/b"),
        format!("{root}/c"),
    );

    let err = client
        .multi(&[
            Op::create(a.clone(), b"".to_vec(), CreateMode::Persistent),
            Op::set_data(existing.clone(), b"changed".to_vec(), None),
            Op::create(b.clone(), b"".to_vec(), CreateMode::Persistent),
            Op::set_data(existing.clone(), b"again".to_vec(), Some(0)),
            Op::create(c.clone(), b"".to_vec(), CreateMode::Persistent),
        ])
        .await
        .unwrap_err();
    let Error::MultiFailed {
        index,
        code,
        results,
    } = &err
    else {
        panic!("expected MultiFailed, got {err:?}");
    };
    // The first set_data made version 1, so the second one's expected version 0 is stale.
    assert_eq!((*index, *code), (3, ErrorCode::BadVersion));
    assert_eq!(err.code(), Some(ErrorCode::BadVersion));
    assert_eq!(
        results[..],
        [
            OpResult::Error(ErrorCode::Ok),
            OpResult::Error(ErrorCode::Ok),
            OpResult::Error(ErrorCode::Ok),
            OpResult::Error(ErrorCode::BadVersion),
            OpResult::Error(ErrorCode::RuntimeInconsistency),
        ]
    );
    for path in [&a, &b, &c] {
        assert_eq!(client.exists(path).await.unwrap(), None, "{path}");
    }
    let (data, stat) = client.get_data(&existing).await.unwrap();
    assert!(data.is_empty());
    assert_eq!(stat.version, 0);
    assert_eq!(client.get_children(&root).await.unwrap(), ["existing"]);

    // The first op failing, and other codes.
    let cases: Vec<(Vec<Op>, usize, ErrorCode)> = vec![
        (
            vec![
                Op::delete(format!("{root}/missing"), None),
                Op::create(a.clone(), b"".to_vec(), CreateMode::Persistent),
            ],
            0,
            ErrorCode::NoNode,
        ),
        (
            vec![
                Op::create(a.clone(), b"".to_vec(), CreateMode::Persistent),
                Op::create(existing.clone(), b"".to_vec(), CreateMode::Persistent),
            ],
            1,
            ErrorCode::NodeExists,
        ),
        (
            vec![
                Op::create(a.clone(), b"".to_vec(), CreateMode::Persistent),
                Op::create(format!("{a}/child"), b"".to_vec(), CreateMode::Persistent),
                Op::delete(a.clone(), None),
            ],
            2,
            ErrorCode::NotEmpty,
        ),
        (
            vec![
                Op::create(a.clone(), b"".to_vec(), CreateMode::Ephemeral),
                Op::create(format!("{a}/child"), b"".to_vec(), CreateMode::Persistent),
            ],
            1,
            ErrorCode::NoChildrenForEphemerals,
        ),
        (
            vec![
                Op::create(a.clone(), b"".to_vec(), CreateMode::Persistent),
                Op::check(existing.clone(), Some(7)),
            ],
            1,
            ErrorCode::BadVersion,
        ),
    ];
    for (ops, want_index, want_code) in cases {
        let err = client.multi(&ops).await.unwrap_err();
        let Error::MultiFailed {
            index,
            code,
            results,
        } = &err
        else {
            panic!("expected MultiFailed, got {err:?}");
        };
        assert_eq!((*index, *code), (want_index, want_code), "{ops:?}");
        assert_eq!(results.len(), ops.len());
        assert_eq!(results[want_index], OpResult::Error(want_code));
        assert_eq!(client.exists(&a).await.unwrap(), None, "{ops:?}");
    }
    assert_eq!(client.get_children(&root).await.unwrap(), ["existing"]);

    // A bad path anywhere in the batch refuses the whole batch before sending.
    let err = client
        .multi(&[
            Op::create(a.clone(), b"".to_vec(), CreateMode::Persistent),
            Op::delete("relative", None),
        ])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidPath { path, .. } if path == "relative"),
        "{err:?}"
    );
    assert_eq!(client.exists(&a).await.unwrap(), None);
}

#[tokio::test]
async fn multi_read_reports_each_read_on_its_own() {
    let (_server, client, root) = setup("multi-read").await;
    let node = format!("{root}/n");
    client
        .create(&node, b"payload", CreateMode::Persistent)
        .await
        .unwrap();
    mkdir(&client, &format!("{root}/m")).await;
    let missing = format!("{root}/missing");

    let results = client
        .multi_read(&[
            MultiReadOp::GetData(node.clone()),
            MultiReadOp::GetData(missing.clone()),
            MultiReadOp::GetChildren(root.clone()),
            MultiReadOp::GetChildren(missing.clone()),
            MultiReadOp::GetChildren(node.clone()),
        ])
        .await
        .unwrap();
    assert_eq!(results.len(), 5);
    let OpResult::GetData { data, stat } = &results[0] else {
        panic!("get_data result: {:?}", results[0]);
    };
    assert_eq!(&data[..], b"payload");
    assert_eq!(Some(*stat), client.exists(&node).await.unwrap());
    assert_eq!(results[1], OpResult::Error(ErrorCode::NoNode));
    let OpResult::GetChildren { children } = &results[2] else {
        panic!("get_children result: {:?}", results[2]);
    };
    assert_eq!(sorted(children.clone()), ["m", "n"]);
    assert_eq!(results[3], OpResult::Error(ErrorCode::NoNode));
    assert_eq!(
        results[4],
        OpResult::GetChildren {
            children: Vec::new()
        }
    );
    assert_eq!(
        client.multi_read(&[]).await.unwrap(),
        Vec::<OpResult>::new()
    );
}

// ----- session-level ops ------------------------------------------------------------------

#[tokio::test]
async fn get_config_on_a_standalone_server() {
    let (_server, client, _root) = setup("config").await;
    let (data, stat) = client.get_config().await.unwrap();
    // A standalone server without dynamic reconfiguration keeps the node, empty, as the
    // server made it at start (no transaction created it).
    assert!(data.is_empty(), "{data:?}");
    assert_eq!((stat.data_length, stat.czxid, stat.version), (0, 0, 0));
    let (config, config_stat) = client.get_data("/zookeeper/config").await.unwrap();
    assert_eq!((data, stat), (config, config_stat));
}

#[tokio::test]
async fn every_op_after_close_fails_with_closed() {
    let (_server, client, root) = setup("closed").await;
    let other = client.clone();
    client.close().await.unwrap();
    assert_eq!(client.session_state(), SessionState::Closed);
    client.close().await.unwrap();

    let node = format!("{root}/n");
    let results: Vec<(&str, Error)> = vec![
        (
            "create",
            other
                .create(&node, b"", CreateMode::Persistent)
                .await
                .unwrap_err(),
        ),
        (
            "create2",
            other
                .create2(&node, b"", CreateMode::Persistent)
                .await
                .unwrap_err(),
        ),
        ("delete", other.delete(&root, None).await.unwrap_err()),
        ("exists", other.exists(&root).await.unwrap_err()),
        ("get_data", other.get_data(&root).await.unwrap_err()),
        (
            "set_data",
            other.set_data(&root, b"", None).await.unwrap_err(),
        ),
        ("get_acl", other.get_acl(&root).await.unwrap_err()),
        (
            "set_acl",
            other
                .set_acl(&root, Acl::OPEN_UNSAFE, None)
                .await
                .unwrap_err(),
        ),
        ("get_children", other.get_children(&root).await.unwrap_err()),
        (
            "get_children2",
            other.get_children2(&root).await.unwrap_err(),
        ),
        (
            "get_all_children_number",
            other.get_all_children_number(&root).await.unwrap_err(),
        ),
        (
            "get_ephemerals",
            other.get_ephemerals("/").await.unwrap_err(),
        ),
        ("sync", other.sync(&root).await.unwrap_err()),
        ("check", other.check(&root, None).await.unwrap_err()),
        (
            "multi",
            other
                .multi(&[Op::check(root.clone(), None)])
                .await
                .unwrap_err(),
        ),
        (
            "multi_read",
            other
                .multi_read(&[MultiReadOp::GetData(root.clone())])
                .await
                .unwrap_err(),
        ),
        (
            "add_auth",
            other.add_auth("digest", b"u:p").await.unwrap_err(),
        ),
        ("who_am_i", other.who_am_i().await.unwrap_err()),
        ("get_config", other.get_config().await.unwrap_err()),
        (
            "get_data_and_watch",
            other.get_data_and_watch(&root).await.unwrap_err(),
        ),
        (
            "add_watch",
            other
                .add_watch(&root, zkwarden::AddWatchMode::Persistent)
                .await
                .unwrap_err(),
        ),
    ];
    for (op, err) in results {
        assert_eq!(err, Error::Closed, "{op}");
    }
    assert!(Error::Closed.is_session_terminal());
}

// ----- input refused before sending ---------------------------------------------------------

#[tokio::test]
async fn invalid_paths_are_refused_and_the_session_carries_on() {
    let (_server, client, root) = setup("invalid-paths").await;
    let session = client.session_id();
    let bad_paths = [
        "",
        "relative",
        "/trailing/",
        "/a//b",
        "//",
        "/a/./b",
        "/a/../b",
        "/.",
        "/..",
        "/nul\0",
        "/ctl\u{1}",
        "/del\u{7f}",
        "/\u{fff0}",
        "/private\u{e000}",
    ];
    for bad in bad_paths {
        let results: Vec<(&str, Error)> = vec![
            (
                "create",
                client
                    .create(bad, b"", CreateMode::Persistent)
                    .await
                    .unwrap_err(),
            ),
            (
                "create2",
                client
                    .create2(bad, b"", CreateMode::Ephemeral)
                    .await
                    .unwrap_err(),
            ),
            ("delete", client.delete(bad, None).await.unwrap_err()),
            ("exists", client.exists(bad).await.unwrap_err()),
            ("get_data", client.get_data(bad).await.unwrap_err()),
            (
                "set_data",
                client.set_data(bad, b"x", None).await.unwrap_err(),
            ),
            ("get_acl", client.get_acl(bad).await.unwrap_err()),
            (
                "set_acl",
                client
                    .set_acl(bad, Acl::OPEN_UNSAFE, None)
                    .await
                    .unwrap_err(),
            ),
            ("get_children", client.get_children(bad).await.unwrap_err()),
            (
                "get_children2",
                client.get_children2(bad).await.unwrap_err(),
            ),
            (
                "get_all_children_number",
                client.get_all_children_number(bad).await.unwrap_err(),
            ),
            ("sync", client.sync(bad).await.unwrap_err()),
            ("check", client.check(bad, None).await.unwrap_err()),
            (
                "multi",
                client
                    .multi(&[Op::set_data(bad, b"".to_vec(), None)])
                    .await
                    .unwrap_err(),
            ),
            (
                "multi_read",
                client
                    .multi_read(&[MultiReadOp::GetChildren(bad.to_owned())])
                    .await
                    .unwrap_err(),
            ),
            (
                "exists_and_watch",
                client.exists_and_watch(bad).await.unwrap_err(),
            ),
            (
                "get_data_and_watch",
                client.get_data_and_watch(bad).await.unwrap_err(),
            ),
            (
                "get_children_and_watch",
                client.get_children_and_watch(bad).await.unwrap_err(),
            ),
            (
                "add_watch",
                client
                    .add_watch(bad, zkwarden::AddWatchMode::PersistentRecursive)
                    .await
                    .unwrap_err(),
            ),
            (
                "remove_watches",
                client
                    .remove_watches(bad, zkwarden::WatcherType::Any)
                    .await
                    .unwrap_err(),
            ),
        ];
        for (op, err) in results {
            match &err {
                Error::InvalidPath { path, reason } => {
                    assert_eq!(path, bad, "{op}");
                    assert!(!reason.is_empty(), "{op}");
                }
                other => panic!("{op}({bad:?}): expected InvalidPath, got {other:?}"),
            }
            assert!(err.is_invalid_request());
        }
        // The session did not notice.
        assert_eq!(client.session_state(), SessionState::Connected, "{bad:?}");
        client.sync(&root).await.unwrap();
    }
    assert_eq!(client.session_id(), session);
    let node = client
        .create(&format!("{root}/fine"), b"ok", CreateMode::Persistent)
        .await
        .unwrap();
    assert_eq!(&client.get_data(&node).await.unwrap().0[..], b"ok");
    assert_eq!(client.get_children(&root).await.unwrap(), ["fine"]);
}

#[tokio::test]
async fn data_over_the_frame_limit_is_refused_and_the_session_carries_on() {
    let server = start_server().await;
    let limit = 64 * 1024;
    let client = Client::builder(server.connect_string())
        .session_timeout(SESSION_TIMEOUT)
        .max_frame_len(limit)
        .connect()
        .await
        .unwrap();
    let root = unique_path("too-large");
    mkdir(&client, &root).await;
    let node = format!("{root}/n");
    mkdir(&client, &node).await;
    let session = client.session_id();

    let big = vec![7u8; 65 * 1024];
    let check_too_large = |what: &str, err: Error| match err {
        Error::DataTooLarge { len, limit: l } => {
            assert_eq!(l, limit, "{what}");
            assert!(len > big.len(), "{what}: {len}");
            assert!(err.is_invalid_request());
        }
        other => panic!("{what}: expected DataTooLarge, got {other:?}"),
    };
    check_too_large(
        "set_data",
        client.set_data(&node, &big, None).await.unwrap_err(),
    );
    check_too_large(
        "create",
        client
            .create(&format!("{root}/big"), &big, CreateMode::Persistent)
            .await
            .unwrap_err(),
    );
    check_too_large(
        "create2",
        client
            .create2(&format!("{root}/big"), &big, CreateMode::Ephemeral)
            .await
            .unwrap_err(),
    );
    check_too_large(
        "multi",
        client
            .multi(&[
                Op::create(format!("{root}/big"), b"".to_vec(), CreateMode::Persistent),
                Op::set_data(node.clone(), big.clone(), None),
            ])
            .await
            .unwrap_err(),
    );

    // Nothing was sent; the same client goes on working.
    assert_eq!(client.session_state(), SessionState::Connected);
    assert_eq!(client.session_id(), session);
    assert_eq!(client.exists(&format!("{root}/big")).await.unwrap(), None);
    let (data, stat) = client.get_data(&node).await.unwrap();
    assert!(data.is_empty());
    assert_eq!(stat.version, 0);

    let kilobyte: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    let stat = client.set_data(&node, &kilobyte, Some(0)).await.unwrap();
    assert_eq!(stat.data_length, 1000);
    assert_eq!(client.get_data(&node).await.unwrap().0[..], kilobyte[..]);

    // Just under the limit goes through, and its reply (also under the limit) comes back.
    let near = vec![3u8; 60 * 1024];
    client.set_data(&node, &near, None).await.unwrap();
    assert_eq!(client.get_data(&node).await.unwrap().0.len(), near.len());

    // The default limit is the server's default jute.maxbuffer.
    let default_client = connect(&server.connect_string()).await;
    let err = default_client
        .set_data(&node, &vec![0u8; 1024 * 1024], None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::DataTooLarge { limit: 0xfffff, .. }),
        "{err:?}"
    );
    assert_eq!(default_client.get_data(&node).await.unwrap().1.version, 2);
}
