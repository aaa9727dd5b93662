//! The warden's write helpers against real ZooKeeper: the create builder (parents, idempotent,
//! protected — also when a reply is lost or the caller gives up midway), the set_data and
//! delete builders, transactions, guaranteed deletes, shared retry budgets and namespaces.
#![cfg(feature = "testing")]

mod common;

use std::time::Duration;

use common::*;
use zkwarden::testing::{FaultProxy, ZkServer};
use zkwarden::warden::{ConnectionState, PROTECTED_PREFIX, ParentMode, RetryConfig, Warden};
use zkwarden::{Client, CreateMode, Error, ErrorCode, EventType, OpResult};

// ----- helpers ----------------------------------------------------------------------------

/// A warden on `connect` with the tests' session timeout.
async fn warden(connect: &str) -> Warden {
    Warden::builder(connect)
        .session_timeout(SESSION_TIMEOUT)
        .start()
        .await
        .expect("start a warden")
}

/// A server, a warden and a plain client on it, and a fresh root node for the test.
async fn setup(prefix: &str) -> (ZkServer, Warden, Client, String) {
    let server = start_server().await;
    let warden = warden(&server.connect_string()).await;
    let client = connect(&server.connect_string()).await;
    let root = unique_path(prefix);
    mkdir(&client, &root).await;
    (server, warden, client, root)
}

/// A server with a proxy in front of it, a warden behind the proxy (built by `configure`),
/// a plain client straight to the server, and a fresh root node.
async fn setup_proxied(
    prefix: &str,
    configure: impl FnOnce(zkwarden::warden::WardenBuilder) -> zkwarden::warden::WardenBuilder,
) -> (ZkServer, FaultProxy, Warden, Client, String) {
    let server = start_server().await;
    let proxy = FaultProxy::start(server.addr())
        .await
        .expect("start a proxy");
    let builder = Warden::builder(proxy.connect_string()).session_timeout(SESSION_TIMEOUT);
    let warden = configure(builder).start().await.expect("start a warden");
    let client = connect(&server.connect_string()).await;
    let root = unique_path(prefix);
    mkdir(&client, &root).await;
    (server, proxy, warden, client, root)
}

async fn mkdir(client: &Client, path: &str) {
    client
        .create(path, b"", CreateMode::Persistent)
        .await
        .unwrap_or_else(|e| panic!("create {path}: {e}"));
}

/// Waits (on child watches) until `parent` has a child for which `pred` holds; returns the
/// children at that moment.
async fn wait_for_children(
    client: &Client,
    parent: &str,
    what: &str,
    pred: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    within(what, async {
        loop {
            let (children, watcher) = client.get_children_and_watch(parent).await.unwrap();
            if pred(&children) {
                return children;
            }
            watcher.await.unwrap();
        }
    })
    .await
}

/// Waits (on exists watches) until `path` is gone.
async fn wait_gone(client: &Client, path: &str) {
    within(&format!("{path} to be deleted"), async {
        loop {
            let (stat, watcher) = client.exists_and_watch(path).await.unwrap();
            if stat.is_none() {
                return;
            }
            let event = watcher.await.unwrap();
            assert_eq!(event.event_type, EventType::NodeDeleted, "{event:?}");
        }
    })
    .await;
}

/// Polls `cond` every 20 ms (up to [`PATIENCE`]): only for state that has no event to await
/// (the server's container reaper, the warden's internal counters).
async fn poll_until(what: &str, mut cond: impl AsyncFnMut() -> bool) {
    within(what, async {
        while !cond().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// Waits for the next connection event in `state` (any generation).
async fn wait_for_event(
    events: &mut zkwarden::warden::ConnectionEvents,
    state: ConnectionState,
) -> zkwarden::warden::ConnectionEvent {
    within(&format!("connection event {state:?}"), async {
        loop {
            let event = events.next().await.expect("event stream ended");
            if event.state == state {
                return event;
            }
        }
    })
    .await
}

/// Cuts the proxy off: every open connection is reset and new ones are refused, so the
/// warden can neither keep nor get a connection (and nothing it sends reaches the server).
fn cut(proxy: &FaultProxy) {
    proxy.refuse_new(true);
    proxy.reset_all();
}

/// Splits a protected node name `_c_<uuid>-<rest>` into the uuid and the rest, checking the
/// uuid's shape (8-4-4-4-12 lowercase hex digits, version 4).
fn protected_parts(name: &str) -> Option<(&str, &str)> {
    let after = name.strip_prefix(PROTECTED_PREFIX)?;
    let uuid = after.get(..36)?;
    let rest = after.get(36..)?.strip_prefix('-')?;
    let shape_ok = uuid.char_indices().all(|(i, c)| match i {
        8 | 13 | 18 | 23 => c == '-',
        14 => c == '4',
        _ => c.is_ascii_digit() || ('a'..='f').contains(&c),
    });
    shape_ok.then_some((uuid, rest))
}

/// The last segment of a path.
fn name_of(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn is_connection_error(error: &Error) -> bool {
    matches!(
        error,
        Error::NotConnected | Error::ConnectionLoss | Error::Timeout
    )
}

// ----- create -----------------------------------------------------------------------------

#[tokio::test]
async fn create_plain_parents_and_idempotent() {
    let (_server, warden, client, root) = setup("create").await;

    let plain = format!("{root}/plain");
    assert_eq!(warden.create(&plain, b"p").await.unwrap(), plain);
    assert_eq!(&client.get_data(&plain).await.unwrap().0[..], b"p");
    assert_eq!(warden.create(&plain, b"p").await, Err(Error::NodeExists));

    // Without `parents`, a missing parent is an error; with it, every ancestor is made.
    let deep = format!("{root}/a/b/c");
    assert_eq!(warden.create(&deep, b"d").await, Err(Error::NoNode));
    let made = warden
        .create(&deep, b"d")
        .parents(ParentMode::Persistent)
        .await
        .unwrap();
    assert_eq!(made, deep);
    for ancestor in [format!("{root}/a"), format!("{root}/a/b")] {
        let stat = client
            .exists(&ancestor)
            .await
            .unwrap()
            .expect("ancestor made");
        assert_eq!(stat.ephemeral_owner, 0);
        assert_eq!(stat.num_children, 1);
    }
    // Ancestors that exist already are fine.
    let sibling = format!("{root}/a/b/c2");
    warden
        .create(&sibling, b"")
        .parents(ParentMode::Persistent)
        .await
        .unwrap();

    // Idempotent: the same data counts as done, different data does not.
    let once = format!("{root}/once");
    warden.create(&once, b"same").idempotent().await.unwrap();
    assert_eq!(
        warden.create(&once, b"same").idempotent().await.unwrap(),
        once
    );
    assert_eq!(
        warden.create(&once, b"other").idempotent().await,
        Err(Error::NodeExists)
    );
    assert_eq!(&client.get_data(&once).await.unwrap().0[..], b"same");
}

#[tokio::test]
async fn container_parents_vanish_once_empty() {
    init_tracing();
    // The container reaper reads its period from a system property (zoo.cfg keys that
    // ZooKeeper does not know become `zookeeper.`-prefixed properties, so `extra_config`
    // cannot set it).
    let server = blocking(|| {
        ZkServer::builder()
            .jvm_arg("-Dznode.container.checkIntervalMs=200")
            .start()
    })
    .await
    .expect("start ZooKeeper");
    let warden = warden(&server.connect_string()).await;
    let client = connect(&server.connect_string()).await;
    let root = unique_path("containers");

    // Two trees: container ancestors and persistent ancestors, side by side.
    let boxed = format!("{root}/box");
    let leaf = format!("{boxed}/inner/leaf");
    let kept = format!("{root}/kept");
    let kept_leaf = format!("{kept}/inner/leaf");
    warden
        .create(&leaf, b"l")
        .parents(ParentMode::Container)
        .await
        .unwrap();
    warden
        .create(&kept_leaf, b"l")
        .parents(ParentMode::Persistent)
        .await
        .unwrap();
    for ancestor in [&root, &boxed, &format!("{boxed}/inner")] {
        let stat = client
            .exists(ancestor)
            .await
            .unwrap()
            .expect("ancestor made");
        assert_eq!(stat.num_children, if *ancestor == root { 2 } else { 1 });
    }

    client.delete(&leaf, None).await.unwrap();
    client.delete(&kept_leaf, None).await.unwrap();
    // The reaper removes empty containers bottom up: `inner`, then `box`. (`root` is a
    // container too but keeps the persistent `kept`.)
    wait_gone(&client, &format!("{boxed}/inner")).await;
    wait_gone(&client, &boxed).await;
    // The reaper needed two passes after the delete for those; the persistent ancestors,
    // just as empty all that time, are still there.
    assert!(
        client
            .exists(&format!("{kept}/inner"))
            .await
            .unwrap()
            .is_some()
    );
    assert!(client.exists(&root).await.unwrap().is_some());
    // Once its last child goes, the container root goes too.
    client.delete(&format!("{kept}/inner"), None).await.unwrap();
    client.delete(&kept, None).await.unwrap();
    wait_gone(&client, &root).await;
}

#[tokio::test]
async fn protected_names_follow_curators_format() {
    let (_server, warden, client, root) = setup("protected").await;

    for (mode, name) in [
        (CreateMode::Persistent, "node"),
        (CreateMode::Ephemeral, "eph"),
        (CreateMode::EphemeralSequential, "seq-"),
    ] {
        let path = warden
            .create(&format!("{root}/{name}"), b"x")
            .mode(mode)
            .protected()
            .await
            .unwrap();
        assert!(path.starts_with(&format!("{root}/")), "{path}");
        let (_, rest) = protected_parts(name_of(&path))
            .unwrap_or_else(|| panic!("{path} is not a protected name"));
        if mode.is_sequential() {
            let counter = rest.strip_prefix(name).expect("name after the uuid");
            assert_eq!(counter.len(), 10, "{path}");
            assert!(counter.bytes().all(|b| b.is_ascii_digit()), "{path}");
        } else {
            assert_eq!(rest, name, "{path}");
        }
        let (data, stat) = client.get_data(&path).await.unwrap();
        assert_eq!(&data[..], b"x");
        let expected_owner = if mode.is_ephemeral() {
            warden.session_id().0
        } else {
            0
        };
        assert_eq!(stat.ephemeral_owner, expected_owner, "{path}");
    }

    // Two protected creates of one name: two nodes, each with its own uuid.
    let first = warden
        .create(&format!("{root}/twin"), b"")
        .protected()
        .await
        .unwrap();
    let second = warden
        .create(&format!("{root}/twin"), b"")
        .protected()
        .await
        .unwrap();
    assert_ne!(first, second);
    let twins: Vec<_> = client
        .get_children(&root)
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.ends_with("-twin"))
        .collect();
    assert_eq!(twins.len(), 2, "{twins:?}");
}

/// The reply to a protected create is lost after the server made the node: the retry must
/// find that node and return it rather than make a second one.
#[tokio::test]
async fn protected_create_finds_its_node_after_a_lost_reply() {
    let (_server, proxy, warden, client, root) = setup_proxied("lost-reply", |b| b).await;
    let session = warden.session_id();

    let dropped_before = proxy.stats().bytes_dropped;
    proxy.drop_replies();
    let creator = warden.clone();
    let base = format!("{root}/lock-");
    let create = tokio::spawn(async move {
        creator
            .create(&base, b"mine")
            .mode(CreateMode::EphemeralSequential)
            .protected()
            .await
    });
    let children = wait_for_children(&client, &root, "the create to land", |c| !c.is_empty()).await;
    assert_eq!(children.len(), 1, "{children:?}");
    let made = format!("{root}/{}", children[0]);
    await_dropped_reply(&proxy, dropped_before, create_reply_len(&made)).await;
    assert!(
        !create.is_finished(),
        "the reply was dropped, the create cannot be done"
    );

    proxy.pass_through();
    let returned = within("the protected create", create)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(returned, made);
    let (_, prefix_rest) = protected_parts(name_of(&made)).expect("protected name");
    assert!(prefix_rest.starts_with("lock-"));
    let uuid_prefix = &name_of(&made)[..PROTECTED_PREFIX.len() + 37];
    let same_prefix: Vec<_> = client
        .get_children(&root)
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.starts_with(uuid_prefix))
        .collect();
    assert_eq!(same_prefix.len(), 1, "{same_prefix:?}");
    // Still the warden's first session, which owns the node.
    assert_eq!(warden.session_id(), session);
    let stat = client.exists(&made).await.unwrap().expect("node kept");
    assert_eq!(stat.ephemeral_owner, session.0);
    assert!(warden.metrics().retries >= 1);
}

/// A protected create whose caller gave up (dropped the future) after the server made the
/// node: the janitor deletes the node once it can reach the server.
#[tokio::test]
async fn janitor_removes_the_node_of_an_abandoned_create() {
    let (_server, proxy, warden, client, root) = setup_proxied("janitor", |b| b).await;

    let dropped_before = proxy.stats().bytes_dropped;
    proxy.drop_replies();
    let creator = warden.clone();
    let base = format!("{root}/orphan");
    let create = tokio::spawn(async move { creator.create(&base, b"").protected().await });
    let children = wait_for_children(&client, &root, "the create to land", |c| !c.is_empty()).await;
    let orphan = format!("{root}/{}", children[0]);
    assert!(protected_parts(&children[0]).is_some(), "{orphan}");
    await_dropped_reply(&proxy, dropped_before, create_reply_len(&orphan)).await;

    create.abort();
    let aborted = within("the create task to end", create).await;
    assert!(aborted.unwrap_err().is_cancelled());
    // The janitor took the node over but cannot reach the server yet.
    assert_eq!(warden.metrics().janitor_backlog, 1);
    assert!(client.exists(&orphan).await.unwrap().is_some());

    proxy.pass_through();
    wait_gone(&client, &orphan).await;
    poll_until("the janitor to finish", async || {
        warden.metrics().janitor_backlog == 0
    })
    .await;
    assert!(client.get_children(&root).await.unwrap().is_empty());
}

/// A protected create that gives up (its retries spent) after an attempt whose reply was
/// lost: the caller never learns the node's name, so the janitor must remove the node, even
/// though the last attempt failed before reaching the server.
#[tokio::test]
async fn failed_protected_create_leaves_nothing_behind() {
    let (_server, proxy, warden, client, root) = setup_proxied("gave-up", |b| {
        b.connection_timeout(Duration::from_secs(1))
            .retry(RetryConfig::NTimes {
                n: 1,
                sleep: Duration::from_millis(100),
            })
    })
    .await;

    proxy.drop_replies();
    let creator = warden.clone();
    let base = format!("{root}/orphan");
    let create = tokio::spawn(async move { creator.create(&base, b"").protected().await });
    let children = wait_for_children(&client, &root, "the create to land", |c| !c.is_empty()).await;
    let orphan = format!("{root}/{}", children[0]);

    // The first attempt times out unanswered, the retry finds no connection: the create
    // fails, and the node it made is the janitor's now.
    let error = within("the create to give up", create)
        .await
        .unwrap()
        .unwrap_err();
    assert!(is_connection_error(&error), "{error}");
    assert_eq!(warden.metrics().janitor_backlog, 1);

    proxy.pass_through();
    wait_gone(&client, &orphan).await;
    poll_until("the janitor to finish", async || {
        warden.metrics().janitor_backlog == 0
    })
    .await;
}

// ----- set_data and delete ----------------------------------------------------------------

#[tokio::test]
async fn set_data_builder_plain_versioned_and_idempotent() {
    let (_server, warden, client, root) = setup("set-data").await;
    let node = format!("{root}/n");
    mkdir(&client, &node).await;

    let stat = warden.set_data(&node, b"a", None).await.unwrap();
    assert_eq!(stat.version, 1);
    let stat = warden.set_data(&node, b"b", Some(1)).await.unwrap();
    assert_eq!(stat.version, 2);
    assert_eq!(
        warden.set_data(&node, b"c", Some(1)).await,
        Err(Error::BadVersion)
    );
    assert_eq!(
        warden.set_data(&format!("{root}/missing"), b"", None).await,
        Err(Error::NoNode)
    );

    // Another writer wrote the same bytes at version 2 first. Without a repeat of ours, that
    // cannot have been our write: idempotent or not, it is a conflict (counting it as ours
    // would let two writers both believe they won).
    client.set_data(&node, b"mine", Some(2)).await.unwrap();
    assert_eq!(
        warden.set_data(&node, b"mine", Some(2)).await,
        Err(Error::BadVersion)
    );
    assert_eq!(
        warden.set_data(&node, b"mine", Some(2)).idempotent().await,
        Err(Error::BadVersion)
    );
    // Someone else's write in between: a real conflict.
    client.set_data(&node, b"theirs", Some(3)).await.unwrap();
    assert_eq!(
        warden.set_data(&node, b"ours", Some(3)).idempotent().await,
        Err(Error::BadVersion)
    );
    // Our data, but the node moved on further since: also a conflict.
    client.set_data(&node, b"same", Some(4)).await.unwrap();
    client.set_data(&node, b"same", Some(5)).await.unwrap();
    assert_eq!(
        warden.set_data(&node, b"same", Some(4)).idempotent().await,
        Err(Error::BadVersion)
    );
    assert_eq!(&client.get_data(&node).await.unwrap().0[..], b"same");
}

#[tokio::test]
async fn idempotent_versioned_set_data_whose_reply_was_lost_succeeds() {
    let (_server, proxy, warden, client, root) = setup_proxied("set-lost-reply", |b| b).await;
    let node = format!("{root}/n");
    mkdir(&client, &node).await;
    let version = client.exists(&node).await.unwrap().unwrap().version;

    // The write lands but its reply never arrives; the warden repeats it after the
    // connection loss, the repeat fails BadVersion, and the node shows our data at the next
    // version: that was our write.
    let (_, changed) = client.exists_and_watch(&node).await.unwrap();
    let dropped_before = proxy.stats().bytes_dropped;
    proxy.drop_replies();
    let write = tokio::spawn({
        let warden = warden.clone();
        let node = node.clone();
        async move {
            warden
                .set_data(&node, b"ours", Some(version))
                .idempotent()
                .await
        }
    });
    within("the write lands on the server", changed)
        .await
        .unwrap();
    await_dropped_reply(&proxy, dropped_before, SET_DATA_REPLY_LEN).await;
    proxy.pass_through();
    let stat = within("the idempotent write completes", write)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stat.version, version + 1);
    assert_eq!(&client.get_data(&node).await.unwrap().0[..], b"ours");
}

#[tokio::test]
async fn delete_builder_plain_idempotent_recursive_and_root() {
    let (_server, warden, client, root) = setup("delete").await;

    let missing = format!("{root}/missing");
    assert_eq!(warden.delete(&missing, None).await, Err(Error::NoNode));
    warden.delete(&missing, None).idempotent().await.unwrap();

    let node = format!("{root}/n");
    mkdir(&client, &node).await;
    assert_eq!(warden.delete(&node, Some(7)).await, Err(Error::BadVersion));
    warden.delete(&node, Some(0)).await.unwrap();
    assert!(client.exists(&node).await.unwrap().is_none());

    // A tree of 50 nodes on three levels: the top, 7 children, 6 grandchildren each.
    let top = format!("{root}/tree");
    let mut creates = vec![client.create(&top, b"", CreateMode::Persistent)];
    for i in 0..7 {
        let child = format!("{top}/c{i}");
        creates.push(client.create(&child, b"", CreateMode::Persistent));
        for j in 0..6 {
            creates.push(client.create(&format!("{child}/g{j}"), b"", CreateMode::Persistent));
        }
    }
    assert_eq!(creates.len(), 50);
    for create in creates {
        create.await.unwrap();
    }
    assert_eq!(client.get_all_children_number(&top).await.unwrap(), 49);
    assert_eq!(warden.delete(&top, None).await, Err(Error::NotEmpty));
    warden.delete(&top, None).recursive().await.unwrap();
    assert!(client.exists(&top).await.unwrap().is_none());
    assert_eq!(
        warden.delete(&top, None).recursive().await,
        Err(Error::NoNode)
    );
    warden
        .delete(&top, None)
        .recursive()
        .idempotent()
        .await
        .unwrap();

    for builder in [
        warden.delete("/", None),
        warden.delete("/", None).recursive(),
    ] {
        assert!(matches!(builder.await, Err(Error::InvalidPath { .. })));
    }
    assert!(client.exists(&root).await.unwrap().is_some());
}

// ----- transactions -----------------------------------------------------------------------

#[tokio::test]
async fn transaction_commits_all_or_nothing() {
    let (_server, warden, client, root) = setup("txn").await;
    let parent = format!("{root}/p");
    let child = format!("{parent}/c");
    let gone = format!("{root}/gone");
    mkdir(&client, &gone).await;

    let txn = warden
        .transaction()
        .create(&parent, b"p".to_vec(), CreateMode::Persistent)
        .create(
            format!("{parent}/s-"),
            b"".to_vec(),
            CreateMode::PersistentSequential,
        )
        .create(&child, b"c".to_vec(), CreateMode::Persistent)
        .set_data(&parent, b"p2".to_vec(), Some(0))
        .check(&child, Some(0))
        .delete(&gone, Some(0));
    assert_eq!(txn.len(), 6);
    assert!(!txn.is_empty());
    assert_eq!(txn.ops()[3].path(), parent);
    let results = txn.commit().await.unwrap();
    assert_eq!(results.len(), 6);
    match &results[0] {
        OpResult::Create { path, .. } => assert_eq!(path, &parent),
        other => panic!("{other:?}"),
    }
    match &results[1] {
        OpResult::Create { path, .. } => assert_eq!(path, &format!("{parent}/s-0000000000")),
        other => panic!("{other:?}"),
    }
    match &results[3] {
        OpResult::SetData { stat } => assert_eq!(stat.version, 1),
        other => panic!("{other:?}"),
    }
    assert_eq!(results[4], OpResult::Check);
    assert_eq!(results[5], OpResult::Delete);
    assert_eq!(&client.get_data(&parent).await.unwrap().0[..], b"p2");
    assert!(client.exists(&gone).await.unwrap().is_none());

    // The second op fails: nothing of the transaction is applied.
    let fresh = format!("{root}/fresh");
    let failed = warden
        .transaction()
        .create(&fresh, b"".to_vec(), CreateMode::Persistent)
        .set_data(&parent, b"p3".to_vec(), Some(0))
        .delete(&child, None)
        .commit()
        .await;
    match failed {
        Err(Error::MultiFailed {
            index,
            code,
            results,
        }) => {
            assert_eq!(index, 1);
            assert_eq!(code, ErrorCode::BadVersion);
            assert_eq!(results.len(), 3);
        }
        other => panic!("expected MultiFailed, got {other:?}"),
    }
    assert!(client.exists(&fresh).await.unwrap().is_none());
    assert!(client.exists(&child).await.unwrap().is_some());
    assert_eq!(&client.get_data(&parent).await.unwrap().0[..], b"p2");

    // Nothing to do: done at once.
    let empty = warden.transaction();
    assert!(empty.is_empty());
    assert!(empty.commit().await.unwrap().is_empty());
}

// ----- guaranteed deletes -----------------------------------------------------------------

#[tokio::test]
async fn guaranteed_delete_returns_final_errors_without_pending() {
    let (_server, warden, client, root) = setup("guaranteed-final").await;

    let node = format!("{root}/n");
    mkdir(&client, &node).await;
    mkdir(&client, &format!("{node}/child")).await;
    assert_eq!(
        warden.delete_guaranteed(&node, None).await,
        Err(Error::NotEmpty)
    );
    assert_eq!(
        warden.delete_guaranteed(&node, Some(3)).await,
        Err(Error::BadVersion)
    );
    assert_eq!(
        warden
            .delete_guaranteed(&format!("{root}/missing"), None)
            .await,
        Err(Error::NoNode)
    );
    assert!(matches!(
        warden.delete_guaranteed("/", None).await,
        Err(Error::InvalidPath { .. })
    ));
    assert!(warden.pending_deletes().is_empty());
    assert_eq!(warden.metrics().pending_deletes, 0);

    warden
        .delete_guaranteed(&format!("{node}/child"), Some(0))
        .await
        .unwrap();
    assert!(warden.pending_deletes().is_empty());
    assert_eq!(client.exists(&node).await.unwrap().unwrap().num_children, 0);
}

/// The network fails for longer than the session lives: the delete fails now, stays
/// pending, and is done on the next session once the network heals.
#[tokio::test]
async fn guaranteed_delete_finishes_after_the_network_heals() {
    let (_server, proxy, warden, client, root) = setup_proxied("guaranteed", |b| {
        b.connection_timeout(Duration::from_secs(1))
            .retry(RetryConfig::NTimes {
                n: 1,
                sleep: Duration::from_millis(100),
            })
    })
    .await;
    let node = format!("{root}/lock");
    mkdir(&client, &node).await;
    let mut events = warden.events();

    cut(&proxy);
    let error = warden.delete_guaranteed(&node, None).await.unwrap_err();
    assert!(is_connection_error(&error), "{error}");
    assert_eq!(warden.pending_deletes(), std::slice::from_ref(&node));
    assert_eq!(warden.metrics().pending_deletes, 1);
    // Asking again while it is pending changes nothing.
    assert!(warden.delete_guaranteed(&node, None).await.is_err());
    assert_eq!(warden.pending_deletes(), std::slice::from_ref(&node));
    assert!(client.exists(&node).await.unwrap().is_some());

    // The session is given up for lost; the delete stays pending through that.
    wait_for_event(&mut events, ConnectionState::Lost).await;
    assert_eq!(warden.pending_deletes(), std::slice::from_ref(&node));
    assert!(client.exists(&node).await.unwrap().is_some());

    proxy.pass_through();
    let back = wait_for_event(&mut events, ConnectionState::Reconnected).await;
    assert_eq!(back.generation, 2);
    wait_gone(&client, &node).await;
    poll_until("the pending delete to clear", async || {
        warden.pending_deletes().is_empty()
    })
    .await;
    assert_eq!(warden.metrics().pending_deletes, 0);
}

// ----- retry budgets ----------------------------------------------------------------------

/// Two operations inside one `retrying` body share its budget: while no server can be
/// reached, the whole body makes at most the policy's 3 retries, not 3 per operation.
#[tokio::test]
async fn retrying_body_shares_one_budget() {
    let (_server, proxy, warden, _client, root) = setup_proxied("budget", |b| {
        b.connection_timeout(Duration::from_millis(300))
            .retry(RetryConfig::NTimes {
                n: 3,
                sleep: Duration::from_millis(10),
            })
    })
    .await;
    let mut events = warden.events();
    cut(&proxy);
    wait_for_event(&mut events, ConnectionState::Suspended).await;

    let before = warden.metrics().retries;
    let mut bodies = 0;
    let result = warden
        .retrying(|w| {
            bodies += 1;
            let (a, b) = (format!("{root}/a"), format!("{root}/b"));
            async move {
                let (a, b) = tokio::join!(w.exists(&a), w.get_data(&b));
                a?;
                b?;
                Ok(())
            }
        })
        .await;
    let error = result.unwrap_err();
    assert!(is_connection_error(&error), "{error}");
    let retries = warden.metrics().retries - before;
    assert!(retries <= 3, "{retries} retries for a budget of 3");
    assert!(retries >= 1, "no retry at all");
    assert!(bodies >= 1);
}

// ----- namespaces -------------------------------------------------------------------------

#[tokio::test]
async fn namespace_is_created_and_paths_are_relative_to_it() {
    let server = start_server().await;
    let client = connect(&server.connect_string()).await;
    let warden = Warden::builder(server.connect_string())
        .session_timeout(SESSION_TIMEOUT)
        .namespace("/ns/app")
        .start()
        .await
        .unwrap();
    assert!(client.exists("/ns/app").await.unwrap().is_some());

    assert_eq!(warden.create("/x", b"1").await.unwrap(), "/x");
    assert_eq!(&client.get_data("/ns/app/x").await.unwrap().0[..], b"1");
    assert!(client.exists("/x").await.unwrap().is_none());

    let protected = warden
        .create("/y", b"")
        .mode(CreateMode::EphemeralSequential)
        .protected()
        .await
        .unwrap();
    assert!(protected.starts_with("/_c_"), "{protected}");
    assert!(
        client
            .exists(&format!("/ns/app{protected}"))
            .await
            .unwrap()
            .is_some()
    );

    let results = warden
        .transaction()
        .create("/t", b"".to_vec(), CreateMode::Persistent)
        .commit()
        .await
        .unwrap();
    assert!(matches!(&results[0], OpResult::Create { path, .. } if path == "/t"));
    assert!(client.exists("/ns/app/t").await.unwrap().is_some());

    let mut children = warden.get_children("/").await.unwrap();
    children.sort();
    assert_eq!(children.len(), 3);
    assert_eq!(children[0], name_of(&protected));
    assert_eq!(&children[1..], ["t", "x"]);
    warden.delete("/x", None).await.unwrap();
    assert!(client.exists("/ns/app/x").await.unwrap().is_none());
}
