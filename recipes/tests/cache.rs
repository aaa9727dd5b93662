//! Tree, node and children caches against a real server: events, snapshots, options, and
//! the faults a cache must live through (server unreachable at start, missing root, a node
//! deleted and created again while the cache is cut off, a slow subscriber).

mod cache_support;
mod common;

use cache_support::{events_until, server_tree, truth_of, wait_for_state, wait_until};
use common::znodes::expire_and_await_new_session;
use common::{start_server, unique_path, warden, within};
use zkwarden::testing::FaultProxy;
use zkwarden::warden::ConnectionState;
use zkwarden_recipes::cache::{CacheEvent, ChildrenCache, NodeCache, ReadLimit, TreeCache};

fn is_initialized(e: &CacheEvent) -> bool {
    matches!(e, CacheEvent::Initialized)
}

fn is_resynced(e: &CacheEvent) -> bool {
    matches!(e, CacheEvent::Resynced { .. })
}

#[tokio::test]
async fn reports_creations_changes_and_deletions() {
    let server = start_server().await;
    let w = warden(&server.connect_string()).await;
    let root = unique_path("cache-basic");
    w.create(&root, b"root").await.expect("create root");
    w.create(&format!("{root}/a"), b"one")
        .await
        .expect("create a");

    let cache = TreeCache::builder(&w, &root).start().await.expect("start");
    let mut events = cache.events();
    let initial = events_until(&mut events, "initialized", is_initialized).await;
    let created: Vec<_> = initial.iter().filter_map(CacheEvent::path).collect();
    assert_eq!(created, [root.as_str(), &format!("{root}/a")]);
    assert!(cache.is_initialized());
    within("initialized future", cache.initialized())
        .await
        .expect("initialized");
    assert_eq!(
        cache.get(&format!("{root}/a")).expect("a cached").data,
        &b"one"[..]
    );

    let b = format!("{root}/b");
    w.create(&b, b"bee").await.expect("create b");
    let seen = events_until(&mut events, "b created", |e| e.path() == Some(&b)).await;
    assert!(matches!(seen.last(), Some(CacheEvent::Created { node, .. }) if node.data == "bee"));

    let stat = w.set_data(&b, b"bee2", None).await.expect("set b");
    let seen = events_until(&mut events, "b changed", |e| e.path() == Some(&b)).await;
    match seen.last() {
        Some(CacheEvent::Changed { node, .. }) => {
            assert_eq!(node.data, &b"bee2"[..]);
            assert_eq!(node.stat.mzxid, stat.mzxid);
        }
        other => panic!("expected Changed, got {other:?}"),
    }

    w.delete(&b, None).await.expect("delete b");
    let seen = events_until(&mut events, "b deleted", |e| e.path() == Some(&b)).await;
    assert!(matches!(seen.last(), Some(CacheEvent::Deleted { node, .. }) if node.data == "bee2"));

    let names: Vec<String> = cache.children(&root).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["a"]);
    assert_eq!(truth_of(&cache.snapshot()), server_tree(&w, &root).await);
}

#[tokio::test]
async fn a_missing_root_is_waited_for() {
    let server = start_server().await;
    let w = warden(&server.connect_string()).await;
    let root = unique_path("cache-missing");
    let cache = TreeCache::builder(&w, &root).start().await.expect("start");
    let mut events = cache.events();
    events_until(&mut events, "initialized", is_initialized).await;
    assert!(cache.is_empty());

    w.create(&root, b"").await.expect("create root");
    let child = format!("{root}/c");
    w.create(&child, b"x").await.expect("create child");
    let seen = events_until(&mut events, "child created", |e| e.path() == Some(&child)).await;
    let paths: Vec<_> = seen.iter().filter_map(CacheEvent::path).collect();
    assert_eq!(paths, [root.as_str(), child.as_str()]);
    assert_eq!(truth_of(&cache.snapshot()), server_tree(&w, &root).await);
}

#[tokio::test]
async fn started_while_unreachable_initializes_once_the_server_answers() {
    let server = start_server().await;
    let writer = warden(&server.connect_string()).await;
    let proxy = FaultProxy::start(server.addr()).await.expect("proxy");
    let w = warden(&proxy.connect_string()).await;
    let root = unique_path("cache-unreachable");
    writer.create(&root, b"r").await.expect("create root");

    let mut connection = w.events();
    proxy.refuse_new(true);
    proxy.reset_all();
    wait_for_state(&mut connection, ConnectionState::Suspended).await;

    let cache = TreeCache::builder(&w, &root).start().await.expect("start");
    let mut events = cache.events();
    // The warden tries to reconnect (and is refused) while the cache waits.
    let refused = proxy.stats().refused;
    wait_until("two more refused connects", || {
        proxy.stats().refused >= refused + 2
    })
    .await;
    assert!(!cache.is_initialized());
    assert!(cache.is_empty());

    proxy.pass_through();
    within("initialized", cache.initialized())
        .await
        .expect("initialized");
    let seen = events_until(&mut events, "initialized event", is_initialized).await;
    assert_eq!(seen.len(), 2, "one Created and Initialized: {seen:?}");
    assert_eq!(
        truth_of(&cache.snapshot()),
        server_tree(&writer, &root).await
    );
}

#[tokio::test]
async fn delete_and_recreate_while_cut_off_is_reported() {
    let server = start_server().await;
    let writer = warden(&server.connect_string()).await;
    let proxy = FaultProxy::start(server.addr()).await.expect("proxy");
    let w = warden(&proxy.connect_string()).await;
    let root = unique_path("cache-recreate");
    let x = format!("{root}/x");
    let y = format!("{root}/y");
    let z = format!("{root}/z");
    writer.create(&root, b"").await.expect("root");
    for p in [&x, &y, &z] {
        writer.create(p, b"old").await.expect("child");
    }
    let cache = TreeCache::builder(&w, &root).start().await.expect("start");
    within("initialized", cache.initialized())
        .await
        .expect("initialized");
    let (start, mut events) = cache.subscribe();
    let old_x = start.get(&x).expect("x cached").clone();

    let mut connection = w.events();
    proxy.blackhole();
    // Same name, same data: only the creation zxid tells the node apart.
    writer.delete(&x, None).await.expect("delete x");
    writer.create(&x, b"old").await.expect("recreate x");
    writer.set_data(&y, b"new", None).await.expect("set y");
    writer.delete(&z, None).await.expect("delete z");
    // Held long enough for the client to give the connection up: the notifications held
    // by the blackhole are lost with it.
    wait_for_state(&mut connection, ConnectionState::Suspended).await;
    proxy.reset_all();
    proxy.pass_through();

    let seen = events_until(&mut events, "resynced", is_resynced).await;
    let mut replay = start.clone();
    for e in &seen {
        replay.apply(e);
    }
    let truth = server_tree(&writer, &root).await;
    assert_eq!(truth_of(&replay), truth);
    assert_eq!(truth_of(&cache.snapshot()), truth);
    let x_events: Vec<_> = seen.iter().filter(|e| e.path() == Some(&x)).collect();
    match x_events.as_slice() {
        [
            CacheEvent::Deleted { node: gone, .. },
            CacheEvent::Created { node: new, .. },
        ] => {
            assert_eq!(gone.stat.czxid, old_x.stat.czxid);
            assert!(new.stat.czxid > old_x.stat.czxid);
        }
        other => panic!("expected Deleted then Created for x, got {other:?}"),
    }
    assert!(
        seen.iter()
            .any(|e| matches!(e, CacheEvent::Changed { path, .. } if path == &y))
    );
    assert!(
        seen.iter()
            .any(|e| matches!(e, CacheEvent::Deleted { path, .. } if path == &z))
    );
}

#[tokio::test]
async fn depth_selector_and_keep_data() {
    let server = start_server().await;
    let w = warden(&server.connect_string()).await;
    let root = unique_path("cache-options");
    for p in ["", "/a", "/a/deep", "/skip", "/skip/below", "/b"] {
        w.create(&format!("{root}{p}"), b"12345")
            .await
            .expect("create");
    }
    let shallow = TreeCache::builder(&w, &root)
        .max_depth(1)
        .start()
        .await
        .expect("start");
    let selective = TreeCache::builder(&w, &root)
        .selector(|path| !path.ends_with("/skip"))
        .keep_data(false)
        .start()
        .await
        .expect("start");
    within("shallow", shallow.initialized())
        .await
        .expect("init");
    within("selective", selective.initialized())
        .await
        .expect("init");

    let paths =
        |c: &TreeCache| -> Vec<String> { c.snapshot().iter().map(|(p, _)| p.clone()).collect() };
    let rel =
        |names: &[&str]| -> Vec<String> { names.iter().map(|n| format!("{root}{n}")).collect() };
    assert_eq!(paths(&shallow), rel(&["", "/a", "/b", "/skip"]));
    assert_eq!(paths(&selective), rel(&["", "/a", "/a/deep", "/b"]));
    let node = selective.get(&format!("{root}/a")).expect("a");
    assert!(node.data.is_empty());
    assert_eq!(node.stat.data_length, 5);

    // Changes beyond the depth or under a rejected node are not reported.
    let mut shallow_events = shallow.events();
    let mut selective_events = selective.events();
    w.create(&format!("{root}/a/deep/x"), b"")
        .await
        .expect("create deep");
    w.create(&format!("{root}/skip/y"), b"")
        .await
        .expect("create skip");
    let marker = format!("{root}/c");
    w.create(&marker, b"").await.expect("create marker");
    let seen = events_until(&mut shallow_events, "marker", |e| e.path() == Some(&marker)).await;
    assert_eq!(seen.len(), 1, "only the marker: {seen:?}");
    let seen = events_until(&mut selective_events, "marker", |e| {
        e.path() == Some(&marker)
    })
    .await;
    let paths: Vec<_> = seen.iter().filter_map(CacheEvent::path).collect();
    assert_eq!(
        paths,
        [format!("{root}/a/deep/x"), marker.clone()],
        "nothing under skip"
    );
}

#[tokio::test]
async fn node_and_children_caches() {
    let server = start_server().await;
    let w = warden(&server.connect_string()).await;
    let root = unique_path("cache-views");
    let node = NodeCache::builder(&w, &root)
        .start()
        .await
        .expect("node cache");
    let children = ChildrenCache::builder(&w, &root)
        .start()
        .await
        .expect("children cache");
    within("node", node.initialized()).await.expect("init");
    within("children", children.initialized())
        .await
        .expect("init");
    assert!(node.get().is_none());
    let mut node_events = node.events();
    let mut child_events = children.events();

    w.create(&root, b"v1").await.expect("create");
    let one = format!("{root}/one");
    w.create(&one, b"1").await.expect("child");
    w.create(&format!("{one}/grandchild"), b"")
        .await
        .expect("grandchild");
    w.set_data(&root, b"v2", None).await.expect("set");

    let seen = events_until(&mut node_events, "node changed", |e| {
        matches!(e, CacheEvent::Changed { .. })
    })
    .await;
    assert!(
        seen.iter().all(|e| e.path() == Some(root.as_str())),
        "{seen:?}"
    );
    assert_eq!(node.get().expect("node").data, &b"v2"[..]);

    let seen = events_until(&mut child_events, "child", |e| e.path() == Some(&one)).await;
    assert_eq!(seen.len(), 1, "the parent is not reported: {seen:?}");
    let names: Vec<String> = children.children().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["one"]);
    assert_eq!(children.get("one").expect("one").data, &b"1"[..]);
}

#[tokio::test]
async fn a_slow_subscriber_is_told_it_lagged() {
    let server = start_server().await;
    let w = warden(&server.connect_string()).await;
    let root = unique_path("cache-lag");
    w.create(&root, b"").await.expect("root");
    let cache = TreeCache::builder(&w, &root)
        .event_capacity(4)
        .start()
        .await
        .expect("start");
    within("initialized", cache.initialized())
        .await
        .expect("init");
    let mut slow = cache.events();
    let last = format!("{root}/n19");
    for i in 0..20 {
        w.create(&format!("{root}/n{i:02}"), b"")
            .await
            .expect("create");
    }
    wait_until("all cached", || cache.get(&last).is_some()).await;
    match within("first event", slow.next()).await {
        Some(CacheEvent::Lagged { missed }) => assert_eq!(missed, 16),
        other => panic!("expected Lagged, got {other:?}"),
    }
    // Then the newest four; the cache itself is complete.
    let next = within("next event", slow.next()).await.expect("event");
    assert_eq!(next.path(), Some(format!("{root}/n16").as_str()));
    assert_eq!(cache.len(), 21);
}

#[tokio::test]
async fn an_expired_session_is_resynced() {
    let server = start_server().await;
    let writer = warden(&server.connect_string()).await;
    let w = warden(&server.connect_string()).await;
    let root = unique_path("cache-expiry");
    writer.create(&root, b"").await.expect("root");
    writer
        .create(&format!("{root}/keep"), b"k")
        .await
        .expect("keep");
    let cache = TreeCache::builder(&w, &root).start().await.expect("start");
    within("initialized", cache.initialized())
        .await
        .expect("init");
    let (start, mut events) = cache.subscribe();
    let generation = w.generation();

    expire_and_await_new_session(&server.connect_string(), &w).await;
    writer
        .create(&format!("{root}/new"), b"n")
        .await
        .expect("new");

    let seen = events_until(
        &mut events,
        "resynced on a new session",
        |e| matches!(e, CacheEvent::Resynced { generation: g } if *g > generation),
    )
    .await;
    let mut replay = start;
    for e in &seen {
        replay.apply(e);
    }
    wait_until("cache shows the new node", || {
        cache.get(&format!("{root}/new")).is_some()
    })
    .await;
    let truth = server_tree(&writer, &root).await;
    assert_eq!(truth_of(&cache.snapshot()), truth);
}

#[tokio::test]
async fn caches_sharing_a_read_limit_stay_within_it() {
    let server = start_server().await;
    let writer = warden(&server.connect_string()).await;
    let w = warden(&server.connect_string()).await;
    let mut roots = Vec::new();
    for tree in 0..3 {
        let root = unique_path(&format!("cache-limit-{tree}"));
        writer.create(&root, b"").await.expect("root");
        for group in 0..4 {
            let group = format!("{root}/g{group}");
            writer.create(&group, b"g").await.expect("group");
            for leaf in 0..50 {
                writer
                    .create(&format!("{group}/n{leaf}"), b"leaf")
                    .await
                    .expect("leaf");
            }
        }
        roots.push(root);
    }
    // Three caches of 205 nodes each, at most 8 reads in flight between them.
    let limit = ReadLimit::new(8);
    let mut caches: Vec<TreeCache> = Vec::new();
    for root in &roots {
        let builder = TreeCache::builder(&w, root).read_limit(limit.clone());
        caches.push(builder.start().await.expect("start"));
    }
    for cache in &caches {
        within("initialized", cache.initialized())
            .await
            .expect("init");
    }
    assert!(limit.peak() > 1, "the loads were pipelined");
    assert!(limit.peak() <= 8, "peak {} over the limit", limit.peak());
    for (cache, root) in caches.iter().zip(&roots) {
        assert_eq!(cache.len(), 205);
        assert_eq!(
            truth_of(&cache.snapshot()),
            server_tree(&writer, root).await
        );
    }

    // A new session makes every cache read its tree again, within the same limit.
    limit.reset_peak();
    let mut subscriptions: Vec<_> = caches.iter().map(TreeCache::events).collect();
    let generation = w.generation();
    expire_and_await_new_session(&server.connect_string(), &w).await;
    writer
        .delete(&format!("{}/g0/n0", roots[0]), None)
        .await
        .expect("delete");
    for events in &mut subscriptions {
        events_until(
            events,
            "resynced on a new session",
            |e| matches!(e, CacheEvent::Resynced { generation: g } if *g > generation),
        )
        .await;
    }
    assert!(limit.peak() <= 8, "peak {} over the limit", limit.peak());
    assert_eq!(limit.in_flight(), 0);
    wait_until("cache shows the deletion", || {
        caches[0].get(&format!("{}/g0/n0", roots[0])).is_none()
    })
    .await;
    for (cache, root) in caches.iter().zip(&roots) {
        assert_eq!(
            truth_of(&cache.snapshot()),
            server_tree(&writer, root).await
        );
    }
}

#[tokio::test]
async fn a_burst_of_changes_is_read_within_the_limit_and_shown_whole() {
    let server = start_server().await;
    let writer = warden(&server.connect_string()).await;
    let w = warden(&server.connect_string()).await;
    let root = unique_path("cache-burst");
    writer.create(&root, b"").await.expect("root");
    let leaves: Vec<String> = (0..300).map(|leaf| format!("{root}/n{leaf}")).collect();
    for leaf in &leaves {
        writer.create(leaf, b"old").await.expect("leaf");
    }
    let limit = ReadLimit::new(4);
    let cache = TreeCache::builder(&w, &root)
        .read_limit(limit.clone())
        .start()
        .await
        .expect("start");
    within("initialized", cache.initialized())
        .await
        .expect("init");
    let mut events = cache.events();
    limit.reset_peak();

    // Every write sent before the first answer comes, so that the cache's notifications
    // queue up behind each other; a deletion and a creation in the middle of them.
    let client = zkwarden::Client::builder(server.connect_string())
        .connect()
        .await
        .expect("client");
    let created = format!("{root}/new");
    let mut writes = Vec::new();
    for (i, leaf) in leaves.iter().enumerate() {
        writes.push(client.set_data(leaf, b"new", None));
        if i == 150 {
            let deleted = client.delete(&leaves[0], None);
            let made = client.create(&created, b"new", zkwarden::CreateMode::Persistent);
            deleted.await.expect("delete");
            made.await.expect("create");
        }
    }
    for write in writes {
        write.await.expect("write");
    }

    let mut changed: std::collections::HashSet<String> = leaves[1..].iter().cloned().collect();
    let mut deleted = false;
    let mut made = false;
    events_until(&mut events, "every change of the burst", |e| {
        match e {
            CacheEvent::Changed { path, node } if &node.data[..] == b"new" => {
                changed.remove(path);
            }
            CacheEvent::Deleted { path, .. } if *path == leaves[0] => deleted = true,
            CacheEvent::Created { path, .. } if *path == created => made = true,
            _ => {}
        }
        changed.is_empty() && deleted && made
    })
    .await;
    assert!(limit.peak() <= 4, "peak {} over the limit", limit.peak());
    assert_eq!(limit.in_flight(), 0);
    assert_eq!(
        truth_of(&cache.snapshot()),
        server_tree(&writer, &root).await
    );
    client.close().await.expect("close");
}
