//! `PersistentNode` and group membership against a real ZooKeeper: recreation after session
//! expiry and after external deletes, never two copies, data kept across recreation, close,
//! conflicts with another session, and a live group view.

mod common;

use std::collections::BTreeMap;

use bytes::Bytes;
use common::znodes::expire_and_await_new_session;
use common::{PATIENCE, start_server, unique_path, warden, within};
use zkwarden::testing::expire_session;
use zkwarden::{Client, CreateMode, SessionId, Stat};
use zkwarden_recipes::group::{Group, GroupMember};
use zkwarden_recipes::persistent_node::{NodeEvent, NodeMode, PersistentNode};

async fn plain(connect: &str) -> Client {
    Client::connect(connect).await.expect("plain client")
}

/// Waits (on a watch) until `path` exists with `owner` as its ephemeral owner.
async fn wait_owned(client: &Client, path: &str, owner: SessionId) -> Stat {
    within("node owned by the session", async {
        loop {
            let (stat, watcher) = client.exists_and_watch(path).await.unwrap();
            if let Some(stat) = stat {
                if stat.ephemeral_owner == owner.0 {
                    return stat;
                }
            }
            watcher.await.unwrap();
        }
    })
    .await
}

/// Waits (on a watch) until `path` does not exist.
async fn wait_gone(client: &Client, path: &str) {
    within("node gone", async {
        loop {
            let (stat, watcher) = client.exists_and_watch(path).await.unwrap();
            if stat.is_none() {
                return;
            }
            watcher.await.unwrap();
        }
    })
    .await
}

/// The children of `parent` that are copies of the protected sequential node `name`.
async fn copies(client: &Client, parent: &str, name: &str) -> Vec<String> {
    let mut children = client.get_children(parent).await.unwrap();
    children.retain(|c| c.starts_with("_c_") && c.contains(name));
    children
}

/// Waits (on a child watch) until the only copy of `name` under `parent` is owned by `owner`,
/// asserting at every look that there is never more than one; returns its path.
async fn wait_single_copy(client: &Client, parent: &str, name: &str, owner: SessionId) -> String {
    within("one copy owned by the session", async {
        loop {
            let (mut children, watcher) = client.get_children_and_watch(parent).await.unwrap();
            children.retain(|c| c.starts_with("_c_") && c.contains(name));
            assert!(children.len() <= 1, "two copies: {children:?}");
            if let Some(child) = children.first() {
                let path = format!("{parent}/{child}");
                if let Some(stat) = client.exists(&path).await.unwrap() {
                    if stat.ephemeral_owner == owner.0 {
                        return path;
                    }
                }
                // Owned by a session that is going: its deletion fires the child watch.
            }
            watcher.await.unwrap();
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemeral_node_survives_expiry_and_deletes_and_keeps_its_data() {
    let server = start_server().await;
    let connect = server.connect_string();
    let w = warden(&connect).await;
    let client = plain(&connect).await;
    let path = format!("{}/node", unique_path("pn-ephemeral"));

    let node = PersistentNode::builder(&w, &path, NodeMode::Ephemeral)
        .data("one")
        .start()
        .await
        .expect("start");
    assert!(node.wait_for_initial_create(PATIENCE).await);
    assert_eq!(node.actual_path().as_deref(), Some(path.as_str()));
    wait_owned(&client, &path, w.session_id()).await;
    assert_eq!(&client.get_data(&path).await.unwrap().0[..], b"one");

    // New data, kept through a session expiry.
    node.set_data("two").await.unwrap();
    assert_eq!(&client.get_data(&path).await.unwrap().0[..], b"two");
    let session = expire_and_await_new_session(&connect, &w).await;
    wait_owned(&client, &path, session).await;
    assert_eq!(&client.get_data(&path).await.unwrap().0[..], b"two");

    // Deleted by someone else: back, with the same data, on the same session.
    let mut events = node.events();
    client.delete(&path, None).await.unwrap();
    within("vanished", async {
        while !matches!(events.next().await, Some(NodeEvent::Vanished { .. })) {}
    })
    .await;
    wait_owned(&client, &path, session).await;
    assert_eq!(&client.get_data(&path).await.unwrap().0[..], b"two");

    // Data given while the node is missing is used for the recreation.
    client.delete(&path, None).await.unwrap();
    node.set_data("three").await.unwrap();
    within("recreated with the newest data", async {
        loop {
            let (data, stat, watcher) = match client.get_data_and_watch(&path).await {
                Ok(read) => read,
                Err(zkwarden::Error::NoNode) => {
                    let (stat, watcher) = client.exists_and_watch(&path).await.unwrap();
                    if stat.is_none() {
                        watcher.await.unwrap();
                    }
                    continue;
                }
                Err(e) => panic!("{e}"),
            };
            if &data[..] == b"three" && stat.ephemeral_owner == session.0 {
                return;
            }
            watcher.await.unwrap();
        }
    })
    .await;

    // Close deletes it.
    node.close().await.unwrap();
    assert!(client.exists(&path).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_sequential_node_never_has_two_copies() {
    let server = start_server().await;
    let connect = server.connect_string();
    let w = warden(&connect).await;
    let client = plain(&connect).await;
    let parent = unique_path("pn-sequential");
    let name = "member-";
    let node = PersistentNode::builder(
        &w,
        &format!("{parent}/{name}"),
        NodeMode::EphemeralSequential,
    )
    .data("payload")
    .start()
    .await
    .expect("start");
    assert!(node.wait_for_initial_create(PATIENCE).await);
    let first = wait_single_copy(&client, &parent, name, w.session_id()).await;
    assert_eq!(node.actual_path().as_deref(), Some(first.as_str()));
    let child = first.rsplit('/').next().unwrap();
    assert!(child.starts_with("_c_") && child.contains(name), "{child}");

    // Session expiry: a new copy under a new name, the old one gone.
    node.set_data("kept").await.unwrap();
    let session = expire_and_await_new_session(&connect, &w).await;
    let second = wait_single_copy(&client, &parent, name, session).await;
    assert_ne!(second, first);
    assert_eq!(&client.get_data(&second).await.unwrap().0[..], b"kept");
    let mut actual = node.actual_path_receiver();
    within(
        "actual path follows",
        actual.wait_for(|p| p.as_deref() == Some(&second)),
    )
    .await
    .unwrap();
    assert_eq!(copies(&client, &parent, name).await.len(), 1);

    // External delete: another new copy.
    client.delete(&second, None).await.unwrap();
    let third = within("a third copy", async {
        loop {
            let path = wait_single_copy(&client, &parent, name, session).await;
            if path != second {
                return path;
            }
        }
    })
    .await;
    assert_eq!(&client.get_data(&third).await.unwrap().0[..], b"kept");
    assert_eq!(copies(&client, &parent, name).await.len(), 1);

    node.close().await.unwrap();
    assert!(copies(&client, &parent, name).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_node_is_recreated_after_delete() {
    let server = start_server().await;
    let connect = server.connect_string();
    let w = warden(&connect).await;
    let client = plain(&connect).await;
    let path = unique_path("pn-persistent");
    // An existing node is adopted and given our data.
    client
        .create(&path, b"old", CreateMode::Persistent)
        .await
        .unwrap();
    let node = PersistentNode::builder(&w, &path, NodeMode::Persistent)
        .data("mine")
        .start()
        .await
        .expect("start");
    assert!(node.wait_for_initial_create(PATIENCE).await);
    within("data put back", async {
        loop {
            let (data, _, watcher) = client.get_data_and_watch(&path).await.unwrap();
            if &data[..] == b"mine" {
                return;
            }
            watcher.await.unwrap();
        }
    })
    .await;

    client.delete(&path, None).await.unwrap();
    wait_owned(&client, &path, SessionId(0)).await;
    assert_eq!(&client.get_data(&path).await.unwrap().0[..], b"mine");
    node.close().await.unwrap();
    assert!(client.exists(&path).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_of_another_live_session_is_a_conflict_until_it_goes() {
    let server = start_server().await;
    let connect = server.connect_string();
    let w = warden(&connect).await;
    let other = plain(&connect).await;
    let client = plain(&connect).await;
    let path = unique_path("pn-conflict");
    other
        .create(&path, b"theirs", CreateMode::Ephemeral)
        .await
        .unwrap();

    let node = PersistentNode::builder(&w, &path, NodeMode::Ephemeral)
        .data("mine")
        .start()
        .await
        .expect("start");
    let mut events = node.events();
    // The first attempt may run before the subscription; a retry reports it again.
    let owner = within("conflict reported", async {
        loop {
            if let Some(NodeEvent::Conflict { owner, .. }) = events.next().await {
                return owner;
            }
        }
    })
    .await;
    assert_eq!(owner, other.session_id());
    assert_eq!(&client.get_data(&path).await.unwrap().0[..], b"theirs");
    assert_eq!(node.actual_path(), None);

    // The other session ends: the node becomes ours.
    other.close().await.unwrap();
    wait_owned(&client, &path, w.session_id()).await;
    assert!(node.wait_for_initial_create(PATIENCE).await);
    assert_eq!(&client.get_data(&path).await.unwrap().0[..], b"mine");
    node.close().await.unwrap();
    wait_gone(&client, &path).await;
}

fn payloads(pairs: &[(&str, &str)]) -> BTreeMap<String, Bytes> {
    pairs
        .iter()
        .map(|(id, payload)| (id.to_string(), Bytes::copy_from_slice(payload.as_bytes())))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_members_join_leave_and_come_back_after_expiry() {
    let server = start_server().await;
    let connect = server.connect_string();
    let group_path = unique_path("group");
    let watcher = warden(&connect).await;
    let group = Group::builder(&watcher, &group_path)
        .start()
        .await
        .expect("group");
    let mut members = group.members();

    let wardens = [
        warden(&connect).await,
        warden(&connect).await,
        warden(&connect).await,
    ];
    let a = GroupMember::builder(&wardens[0], &group_path, "a")
        .payload("pa")
        .start()
        .await
        .expect("join");
    let b = GroupMember::builder(&wardens[1], &group_path, "b")
        .payload("pb")
        .start()
        .await
        .expect("join");
    let c = GroupMember::builder(&wardens[2], &group_path, "c")
        .payload("pc")
        .start()
        .await
        .expect("join");
    assert_eq!(c.id(), "c");

    let all = payloads(&[("a", "pa"), ("b", "pb"), ("c", "pc")]);
    within("three members", members.wait_for(|m| *m == all))
        .await
        .unwrap();

    // A payload change shows.
    b.set_payload("pb2").await.unwrap();
    let changed = payloads(&[("a", "pa"), ("b", "pb2"), ("c", "pc")]);
    within("new payload", members.wait_for(|m| *m == changed))
        .await
        .unwrap();

    // One leaves.
    a.leave().await.unwrap();
    let two = payloads(&[("b", "pb2"), ("c", "pc")]);
    within("two members", members.wait_for(|m| *m == two))
        .await
        .unwrap();

    // A member's session expires: it goes, then comes back with its payload.
    let mut b_events = b.node().events();
    // The gap can be short: follow the view from a task of its own, started before expiry.
    let gap = tokio::spawn({
        let mut view = group.members();
        async move { view.wait_for(|m| !m.contains_key("b")).await.is_ok() }
    });
    expire_session(
        &connect,
        wardens[1].session_id(),
        &wardens[1].client().unwrap().session_password(),
    )
    .await
    .unwrap();
    assert!(within("b gone", gap).await.unwrap());
    within("b back", members.wait_for(|m| *m == two))
        .await
        .unwrap();
    let recreated_on = within("b recreated", async {
        loop {
            if let Some(NodeEvent::Created { session_id, .. }) = b_events.next().await {
                return session_id;
            }
        }
    })
    .await;
    assert_eq!(recreated_on, wardens[1].session_id());
    assert_eq!(group.snapshot(), two);
    drop(b);
    c.leave().await.unwrap();
}
