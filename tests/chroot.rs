//! A client connected with a chroot (`host:port/app`): every operation sees `/app` as `/`,
//! every path it gets back (created nodes, transaction results, ephemerals, watch events) is
//! relative to the chroot, and the ensemble configuration stays where it is.
#![cfg(feature = "testing")]

mod common;

use common::*;
use zkwarden::testing::ZkServer;
use zkwarden::{
    Acl, AddWatchMode, Client, CreateMode, CreateOptions, Error, ErrorCode, EventType, Id,
    MultiReadOp, Op, OpResult, Perms, WatcherType,
};

/// The chroot every test here uses (each test has its own server).
const CHROOT: &str = "/app";

/// A server, an unchrooted client that created `/app`, and a client chrooted there.
async fn setup() -> (ZkServer, Client, Client) {
    let server = start_server().await;
    let admin = connect(&server.connect_string()).await;
    admin
        .create(CHROOT, b"app root", CreateMode::Persistent)
        .await
        .unwrap();
    let app = connect(&format!("{}{CHROOT}", server.connect_string())).await;
    assert_eq!(app.chroot(), Some(CHROOT));
    assert_eq!(admin.chroot(), None);
    (server, admin, app)
}

/// The unchrooted form of a chrooted path.
fn outside(path: &str) -> String {
    if path == "/" {
        CHROOT.to_owned()
    } else {
        format!("{CHROOT}{path}")
    }
}

fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names
}

#[tokio::test]
async fn reads_and_writes_land_under_the_chroot() {
    let (_server, admin, app) = setup().await;

    // The root of the chrooted client is /app.
    let (data, root_stat) = app.get_data("/").await.unwrap();
    assert_eq!(&data[..], b"app root");
    assert_eq!(Some(root_stat), admin.exists(CHROOT).await.unwrap());

    let path = app
        .create("/a", b"one", CreateMode::Persistent)
        .await
        .unwrap();
    assert_eq!(path, "/a");
    assert_eq!(&admin.get_data("/app/a").await.unwrap().0[..], b"one");
    assert_eq!(admin.exists("/a").await.unwrap(), None);

    let (path, stat) = app
        .create2("/b", b"two", CreateMode::Ephemeral)
        .await
        .unwrap();
    assert_eq!(path, "/b");
    assert_eq!(admin.exists("/app/b").await.unwrap(), Some(stat));
    assert_eq!(stat.ephemeral_owner, app.session_id().0);

    // A node named like the chroot inside the chroot keeps its name.
    let nested = app
        .create("/app", b"", CreateMode::Persistent)
        .await
        .unwrap();
    assert_eq!(nested, "/app");
    assert!(admin.exists("/app/app").await.unwrap().is_some());

    // Sequential names: the server numbers from /app's child version (three children so far).
    let seq = app
        .create("/s-", b"", CreateMode::PersistentSequential)
        .await
        .unwrap();
    assert_eq!(seq, "/s-0000000003");
    let (seq2, _) = app
        .create2("/a/", b"", CreateMode::EphemeralSequential)
        .await
        .unwrap();
    assert_eq!(seq2, "/a/0000000000");
    assert!(admin.exists(&outside(&seq)).await.unwrap().is_some());
    assert!(admin.exists(&outside(&seq2)).await.unwrap().is_some());
    // A sequential create at the chroot's root is refused rather than sent as "/app" plus a
    // number, which would land beside the chroot instead of inside it.
    let err = app
        .create("/", b"", CreateMode::PersistentSequential)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidPath { .. }), "{err:?}");

    // exists / get_data / set_data see the same node the unchrooted client sees.
    let app_stat = app.exists("/a").await.unwrap().unwrap();
    assert_eq!(Some(app_stat), admin.exists("/app/a").await.unwrap());
    assert_eq!(app.exists("/missing").await.unwrap(), None);
    let stat = app.set_data("/a", b"uno", Some(0)).await.unwrap();
    assert_eq!(stat.version, 1);
    assert_eq!(
        admin.get_data("/app/a").await.unwrap(),
        (bytes_of(b"uno"), stat)
    );
    assert_eq!(
        app.set_data("/a", b"x", Some(0)).await.unwrap_err(),
        Error::BadVersion
    );
    assert_eq!(app.get_data("/missing").await.unwrap_err(), Error::NoNode);
    admin
        .set_data("/app/a", b"from outside", None)
        .await
        .unwrap();
    assert_eq!(&app.get_data("/a").await.unwrap().0[..], b"from outside");

    // Children of "/" are the children of /app.
    let expected = sorted(admin.get_children(CHROOT).await.unwrap());
    assert_eq!(expected, ["a", "app", "b", "s-0000000003"]);
    assert_eq!(sorted(app.get_children("/").await.unwrap()), expected);
    let (children, stat) = app.get_children2("/").await.unwrap();
    assert_eq!(sorted(children), expected);
    assert_eq!(stat.num_children, 4);
    assert_eq!(Some(stat), admin.exists(CHROOT).await.unwrap());
    assert_eq!(app.get_children("/a").await.unwrap(), ["0000000000"]);
    assert_eq!(app.get_all_children_number("/").await.unwrap(), 5);
    assert_eq!(
        app.get_all_children_number("/").await.unwrap(),
        admin.get_all_children_number(CHROOT).await.unwrap()
    );

    // ACLs.
    let acl = vec![Acl::new(Perms::READ | Perms::ADMIN, Id::ANYONE)];
    let stat = app.set_acl("/a", &acl, Some(0)).await.unwrap();
    assert_eq!(stat.aversion, 1);
    assert_eq!(admin.get_acl("/app/a").await.unwrap(), (acl.clone(), stat));
    assert_eq!(app.get_acl("/a").await.unwrap(), (acl, stat));
    assert_eq!(
        app.set_data("/a", b"", None).await.unwrap_err(),
        Error::NoAuth
    );
    assert_eq!(
        app.set_acl("/a", Acl::OPEN_UNSAFE, Some(0))
            .await
            .unwrap_err(),
        Error::BadVersion
    );
    app.set_acl("/a", Acl::OPEN_UNSAFE, Some(1)).await.unwrap();

    // sync and check.
    app.sync("/a").await.unwrap();
    app.sync("/").await.unwrap();
    // Version 2: one write from each client.
    app.check("/a", Some(2)).await.unwrap();
    assert_eq!(
        app.check("/a", Some(0)).await.unwrap_err(),
        Error::BadVersion
    );
    assert_eq!(
        app.check("/missing", None).await.unwrap_err(),
        Error::NoNode
    );

    // delete, including the check that "/" (here: /app) is never sent.
    assert_eq!(app.delete("/a", None).await.unwrap_err(), Error::NotEmpty);
    app.delete(&seq2, None).await.unwrap();
    app.delete("/a", Some(2)).await.unwrap();
    assert_eq!(admin.exists("/app/a").await.unwrap(), None);
    assert_eq!(app.delete("/a", None).await.unwrap_err(), Error::NoNode);
    let err = app.delete("/", None).await.unwrap_err();
    assert!(matches!(err, Error::InvalidPath { .. }), "{err:?}");
    assert!(admin.exists(CHROOT).await.unwrap().is_some());
}

fn bytes_of(data: &'static [u8]) -> bytes::Bytes {
    bytes::Bytes::from_static(data)
}

#[tokio::test]
async fn transactions_report_chroot_relative_paths() {
    let (_server, admin, app) = setup().await;
    app.create("/existing", b"", CreateMode::Persistent)
        .await
        .unwrap();

    let results = app
        .multi(&[
            Op::create("/m", b"m".to_vec(), CreateMode::Persistent),
            Op::create("/m/seq-", b"".to_vec(), CreateMode::PersistentSequential),
            Op::create(
                "/c",
                b"".to_vec(),
                CreateOptions::new(CreateMode::Container),
            ),
            Op::set_data("/existing", b"v1".to_vec(), Some(0)),
            Op::check("/m", Some(0)),
            Op::delete("/existing", Some(1)),
        ])
        .await
        .unwrap();
    let created: Vec<&str> = results
        .iter()
        .filter_map(|r| match r {
            OpResult::Create { path, .. } => Some(path.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(created, ["/m", "/m/seq-0000000000", "/c"]);
    let OpResult::SetData { stat } = &results[3] else {
        panic!("set_data result: {:?}", results[3]);
    };
    assert_eq!(stat.version, 1);
    assert_eq!(results[4..], [OpResult::Check, OpResult::Delete]);
    for path in &created {
        assert!(
            admin.exists(&outside(path)).await.unwrap().is_some(),
            "{path}"
        );
    }
    assert_eq!(admin.exists("/app/existing").await.unwrap(), None);
    assert_eq!(admin.exists("/m").await.unwrap(), None);

    // A failing transaction under the chroot applies nothing either.
    let err = app
        .multi(&[
            Op::create("/n", b"".to_vec(), CreateMode::Persistent),
            Op::delete("/missing", None),
        ])
        .await
        .unwrap_err();
    let Error::MultiFailed { index, code, .. } = err else {
        panic!("expected MultiFailed, got {err:?}");
    };
    assert_eq!((index, code), (1, ErrorCode::NoNode));
    assert_eq!(admin.exists("/app/n").await.unwrap(), None);

    // Batched reads.
    let results = app
        .multi_read(&[
            MultiReadOp::GetData("/m".into()),
            MultiReadOp::GetChildren("/".into()),
            MultiReadOp::GetData("/missing".into()),
        ])
        .await
        .unwrap();
    let OpResult::GetData { data, stat } = &results[0] else {
        panic!("get_data result: {:?}", results[0]);
    };
    assert_eq!(&data[..], b"m");
    assert_eq!(Some(*stat), admin.exists("/app/m").await.unwrap());
    let OpResult::GetChildren { children } = &results[1] else {
        panic!("get_children result: {:?}", results[1]);
    };
    assert_eq!(sorted(children.clone()), ["c", "m"]);
    assert_eq!(results[2], OpResult::Error(ErrorCode::NoNode));
}

#[tokio::test]
async fn ephemerals_are_listed_relative_to_the_chroot() {
    let (server, admin, app) = setup().await;
    app.create("/dir", b"", CreateMode::Persistent)
        .await
        .unwrap();
    let mine = [
        app.create("/dir/e-", b"", CreateMode::EphemeralSequential)
            .await
            .unwrap(),
        app.create("/top", b"", CreateMode::Ephemeral)
            .await
            .unwrap(),
    ];
    assert_eq!(mine[0], "/dir/e-0000000000");
    // Another session's ephemerals, inside the chroot and beside it, are not listed.
    admin
        .create("/app/other", b"", CreateMode::Ephemeral)
        .await
        .unwrap();
    admin
        .create("/apple", b"", CreateMode::Ephemeral)
        .await
        .unwrap();
    let other_app = connect(&format!("{}{CHROOT}", server.connect_string())).await;
    other_app
        .create("/theirs", b"", CreateMode::Ephemeral)
        .await
        .unwrap();

    assert_eq!(sorted(app.get_ephemerals("/").await.unwrap()), mine);
    assert_eq!(app.get_ephemerals("/dir").await.unwrap(), [mine[0].clone()]);
    assert_eq!(app.get_ephemerals("/t").await.unwrap(), [mine[1].clone()]);
    assert!(app.get_ephemerals("/nothing").await.unwrap().is_empty());
    assert_eq!(other_app.get_ephemerals("/").await.unwrap(), ["/theirs"]);
    assert_eq!(
        sorted(admin.get_ephemerals("/").await.unwrap()),
        ["/app/other", "/apple"]
    );
}

#[tokio::test]
async fn one_shot_watches_report_chroot_relative_paths() {
    let (_server, admin, app) = setup().await;
    app.create("/w", b"", CreateMode::Persistent).await.unwrap();

    let (_, _, data_watch) = app.get_data_and_watch("/w").await.unwrap();
    let (stat, exists_watch) = app.exists_and_watch("/later").await.unwrap();
    assert_eq!(stat, None);
    let (children, child_watch) = app.get_children_and_watch("/w").await.unwrap();
    assert!(children.is_empty());
    let (children, _, root_watch) = app.get_children2_and_watch("/").await.unwrap();
    assert_eq!(children, ["w"]);

    admin.set_data("/app/w", b"changed", None).await.unwrap();
    let event = within("data watch", data_watch).await.unwrap();
    assert_eq!(
        (event.event_type, event.path.as_str()),
        (EventType::NodeDataChanged, "/w")
    );

    admin
        .create("/app/later", b"", CreateMode::Persistent)
        .await
        .unwrap();
    let event = within("exists watch", exists_watch).await.unwrap();
    assert_eq!(
        (event.event_type, event.path.as_str()),
        (EventType::NodeCreated, "/later")
    );
    // The root's child watch fired for the same create, with "/" as its path.
    let event = within("child watch on the chroot", root_watch)
        .await
        .unwrap();
    assert_eq!(
        (event.event_type, event.path.as_str()),
        (EventType::NodeChildrenChanged, "/")
    );

    admin
        .create("/app/w/kid", b"", CreateMode::Persistent)
        .await
        .unwrap();
    let event = within("child watch", child_watch).await.unwrap();
    assert_eq!(
        (event.event_type, event.path.as_str()),
        (EventType::NodeChildrenChanged, "/w")
    );

    // Deletion fires an exists watch set on a node that exists.
    let (_, delete_watch) = app.exists_and_watch("/later").await.unwrap();
    admin.delete("/app/later", None).await.unwrap();
    let event = within("delete watch", delete_watch).await.unwrap();
    assert_eq!(
        (event.event_type, event.path.as_str()),
        (EventType::NodeDeleted, "/later")
    );
}

#[tokio::test]
async fn persistent_watches_report_chroot_relative_paths() {
    let (_server, admin, app) = setup().await;
    app.create("/p", b"", CreateMode::Persistent).await.unwrap();
    let mut persistent = app.add_watch("/p", AddWatchMode::Persistent).await.unwrap();
    let mut recursive = app
        .add_watch("/", AddWatchMode::PersistentRecursive)
        .await
        .unwrap();

    // A sibling of the chroot that shares its prefix is not below it: its changes must not
    // reach the recursive watch on the chroot. Everything the watch sees comes in zxid order,
    // so the first event it sees must be the one after this.
    admin
        .create("/apple", b"", CreateMode::Persistent)
        .await
        .unwrap();
    admin.set_data("/apple", b"x", None).await.unwrap();

    admin.set_data("/app/p", b"1", None).await.unwrap();
    admin
        .create("/app/p/child", b"", CreateMode::Persistent)
        .await
        .unwrap();
    admin
        .create("/app/p/child/grandchild", b"", CreateMode::Persistent)
        .await
        .unwrap();
    admin.delete("/app/p/child/grandchild", None).await.unwrap();

    let mut seen = Vec::new();
    for _ in 0..4 {
        let event = within("recursive watch event", recursive.next())
            .await
            .expect("recursive stream open");
        seen.push((event.event_type, event.path));
    }
    assert_eq!(
        seen,
        [
            (EventType::NodeDataChanged, "/p".to_owned()),
            (EventType::NodeCreated, "/p/child".to_owned()),
            (EventType::NodeCreated, "/p/child/grandchild".to_owned()),
            (EventType::NodeDeleted, "/p/child/grandchild".to_owned()),
        ]
    );

    let mut seen = Vec::new();
    for _ in 0..2 {
        let event = within("persistent watch event", persistent.next())
            .await
            .expect("persistent stream open");
        seen.push((event.event_type, event.path));
    }
    assert_eq!(
        seen,
        [
            (EventType::NodeDataChanged, "/p".to_owned()),
            (EventType::NodeChildrenChanged, "/p".to_owned()),
        ]
    );

    // Removing the watches on /p (3.8 removes persistent ones only with `Any`) tells the
    // stream, with the chrooted path, and ends it.
    app.remove_watches("/p", WatcherType::Any).await.unwrap();
    let event = within("removal notice", persistent.next())
        .await
        .expect("removal event");
    assert_eq!(
        (event.event_type, event.path.as_str()),
        (EventType::PersistentWatchRemoved, "/p")
    );
    assert_eq!(within("stream end", persistent.next()).await, None);
    assert_eq!(
        app.remove_watches("/p", WatcherType::Any)
            .await
            .unwrap_err(),
        Error::NoWatcher
    );

    // The recursive watch on the root is untouched and still relative.
    admin.set_data("/app/p", b"2", None).await.unwrap();
    let event = within("recursive after removal", recursive.next())
        .await
        .unwrap();
    assert_eq!(
        (event.event_type, event.path.as_str()),
        (EventType::NodeDataChanged, "/p")
    );
}

#[tokio::test]
async fn removing_one_shot_watches_under_the_chroot() {
    let (_server, admin, app) = setup().await;
    app.create("/r", b"", CreateMode::Persistent).await.unwrap();
    let (_, _, data_watch) = app.get_data_and_watch("/r").await.unwrap();
    let (_, child_watch) = app.get_children_and_watch("/r").await.unwrap();

    app.remove_watches("/r", WatcherType::Data).await.unwrap();
    let event = within("data watch removed", data_watch).await.unwrap();
    assert_eq!(
        (event.event_type, event.path.as_str()),
        (EventType::DataWatchRemoved, "/r")
    );
    assert_eq!(
        app.remove_watches("/r", WatcherType::Data)
            .await
            .unwrap_err(),
        Error::NoWatcher
    );
    app.check_watches("/r", WatcherType::Children)
        .await
        .unwrap();

    // The child watch is still in place on the server, under the chroot's path.
    admin
        .create("/app/r/kid", b"", CreateMode::Persistent)
        .await
        .unwrap();
    let event = within("child watch", child_watch).await.unwrap();
    assert_eq!(
        (event.event_type, event.path.as_str()),
        (EventType::NodeChildrenChanged, "/r")
    );
    assert_eq!(
        app.check_watches("/r", WatcherType::Children)
            .await
            .unwrap_err(),
        Error::NoWatcher
    );
}

#[tokio::test]
async fn configuration_and_missing_chroots() {
    let (server, admin, app) = setup().await;
    // The configuration node is read outside the chroot.
    assert_eq!(
        app.get_config().await.unwrap(),
        admin.get_config().await.unwrap()
    );
    assert_eq!(
        app.get_config().await.unwrap(),
        admin.get_data("/zookeeper/config").await.unwrap()
    );
    // Through an ordinary read it is a path like any other, under the chroot.
    assert_eq!(
        app.get_data("/zookeeper/config").await.unwrap_err(),
        Error::NoNode
    );

    // A chroot that does not exist yet: the session works, the nodes under it do not.
    let ghost = connect(&format!("{}/ghost", server.connect_string())).await;
    assert_eq!(ghost.chroot(), Some("/ghost"));
    assert_eq!(ghost.exists("/").await.unwrap(), None);
    assert_eq!(
        ghost
            .create("/x", b"", CreateMode::Persistent)
            .await
            .unwrap_err(),
        Error::NoNode
    );
    assert_eq!(
        ghost.get_config().await.unwrap(),
        admin.get_config().await.unwrap()
    );
    // Once it is created from outside, the same session can use it.
    admin
        .create("/ghost", b"", CreateMode::Persistent)
        .await
        .unwrap();
    assert_eq!(
        ghost
            .create("/x", b"", CreateMode::Persistent)
            .await
            .unwrap(),
        "/x"
    );
    assert!(admin.exists("/ghost/x").await.unwrap().is_some());

    // A nested chroot strips its whole prefix.
    admin
        .create("/app/nested", b"", CreateMode::Persistent)
        .await
        .unwrap();
    let nested = connect(&format!("{}/app/nested", server.connect_string())).await;
    let path = nested
        .create("/deep", b"", CreateMode::EphemeralSequential)
        .await
        .unwrap();
    assert_eq!(path, "/deep0000000000");
    assert_eq!(
        app.get_children("/nested").await.unwrap(),
        ["deep0000000000"]
    );
    assert_eq!(nested.get_ephemerals("/").await.unwrap(), [path]);
}
