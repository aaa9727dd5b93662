//! The queues against a real server, Rust on both ends: bounded `put` back-pressure, an item
//! too large, lock-safe deliveries through a session expiry, release and requeue, the sink
//! and stream adapters, id removal, undecodable nodes, and the simple queue against kazoo's
//! `Queue` (Debian's python3-kazoo). The Curator side is in `queue_interop.rs`.

mod common;

use std::collections::BTreeSet;
use std::future::poll_fn;
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant, UNIX_EPOCH};

use common::znodes::{
    await_children, await_state, children_of, expire_and_await_new_session, watches_by_session,
};
use common::{PATIENCE, start_server, unique_path, warden, within};
use futures_sink::Sink;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::watch;
use zkwarden::testing::FaultProxy;
use zkwarden::{ConnectionState, CreateMode, Error};
use zkwarden_recipes::lock::LostReason;
use zkwarden_recipes::queue::{
    BytesSerializer, DistributedDelayQueue, DistributedIdQueue, DistributedQueue, JsonSerializer,
    SimpleDistributedQueue, Utf8Serializer,
};

/// Every watch the server holds (`mntr`'s `zk_watch_count`).
fn watch_count(server: &zkwarden::testing::ZkServer) -> u64 {
    let text = server.four_letter("mntr").expect("mntr");
    text.lines()
        .find_map(|line| line.strip_prefix("zk_watch_count"))
        .and_then(|n| n.trim().parse().ok())
        .expect("zk_watch_count in mntr")
}

#[tokio::test]
async fn bounded_put_waits_until_a_consumer_makes_room() {
    let server = start_server().await;
    let producer_warden = warden(&server.connect_string()).await;
    let consumer_warden = warden(&server.connect_string()).await;
    let path = unique_path("queue-bounded");
    let max = NonZeroUsize::new(3).expect("non-zero");
    let producer = DistributedQueue::new(&producer_warden, &path, Utf8Serializer).max_items(max);
    for i in 0..3 {
        producer.put(&format!("item-{i}")).await.expect("put");
    }
    let blocked = tokio::spawn({
        let producer = producer.clone();
        async move { producer.put(&"item-3".to_owned()).await }
    });
    // The waiting put sets a child watch on the queue (the only watch on this server; `wchc`
    // lists data watches only, so count them all).
    let started = Instant::now();
    while watch_count(&server) < 1 {
        assert!(
            started.elapsed() < PATIENCE,
            "the blocked put never set its watch"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!blocked.is_finished(), "a put into a full queue returned");
    assert_eq!(children_of(&consumer_warden, &path).await.len(), 3);

    let queue = DistributedQueue::new(&consumer_warden, &path, Utf8Serializer);
    let mut consumer = queue.consumer();
    let first = within("an item", consumer.next()).await.expect("next");
    assert_eq!(first.item(), "item-0");
    within("the blocked put", blocked)
        .await
        .expect("put task")
        .expect("blocked put");
    let mut rest = Vec::new();
    for _ in 0..3 {
        rest.push(
            within("an item", consumer.next())
                .await
                .expect("next")
                .item()
                .clone(),
        );
    }
    assert_eq!(rest, ["item-1", "item-2", "item-3"]);
    assert_eq!(queue.len().await.expect("len"), 0);
}

#[tokio::test]
async fn an_item_too_large_is_refused_and_nothing_is_lost() {
    let server = start_server().await;
    let w = warden(&server.connect_string()).await;
    let path = unique_path("queue-too-large");
    let queue = DistributedQueue::new(&w, &path, BytesSerializer);
    queue.put(&b"before".to_vec()).await.expect("put before");
    let huge = vec![7u8; 1 << 20];
    match queue.put(&huge).await {
        Err(Error::DataTooLarge { len, limit }) => assert!(len > limit),
        other => panic!("a 1 MiB item must be refused as DataTooLarge, got {other:?}"),
    }
    assert!(matches!(
        queue.put_multi(&[]).await,
        Err(Error::InvalidArgument(_))
    ));
    let delayed = DistributedDelayQueue::new(&w, &path, BytesSerializer);
    assert!(matches!(
        delayed.put(&b"never".to_vec(), UNIX_EPOCH).await,
        Err(Error::InvalidArgument(_))
    ));
    queue.put(&b"after".to_vec()).await.expect("put after");
    assert_eq!(queue.len().await.expect("len"), 2);
    let mut consumer = queue.consumer();
    for expected in [&b"before"[..], b"after"] {
        let d = within("an item", consumer.next()).await.expect("next");
        assert_eq!(d.item(), expected);
        d.ack().await.expect("ack");
    }
    assert_eq!(queue.len().await.expect("len"), 0);
}

#[tokio::test]
async fn a_lock_safe_item_outlives_its_consumers_session() {
    let server = start_server().await;
    let first_warden = warden(&server.connect_string()).await;
    let second_warden = warden(&server.connect_string()).await;
    let path = unique_path("queue-lock-safe");
    let locks = format!("{path}-locks");
    let first = DistributedQueue::new(&first_warden, &path, Utf8Serializer).lock_path(&locks);
    for item in ["job", "next"] {
        first.put(&item.to_owned()).await.expect("put");
    }

    let delivery = within("the item", first.consumer().next())
        .await
        .expect("next");
    assert_eq!(delivery.item(), "job");
    let lock = delivery.lock().expect("a lock-safe delivery holds a lock");
    assert_eq!(lock.node_path(), format!("{locks}/{}", delivery.name()));
    let lost = lock.lost();
    // Another consumer skips the locked item and takes the next.
    let second = DistributedQueue::new(&second_warden, &path, Utf8Serializer).lock_path(&locks);
    let mut other = second.consumer();
    let next = within("the next item", other.next()).await.expect("next");
    assert_eq!(
        next.item(),
        "next",
        "a locked item was handed to a second consumer"
    );
    next.ack().await.expect("ack");

    // The second consumer now waits for the lock to go (the queue itself does not change).
    let lock_path = lock.node_path().to_owned();
    let waiting = tokio::spawn(async move {
        let again = other.next().await;
        (other, again)
    });
    let session = format!("0x{:x}", second_warden.session_id().0);
    let started = Instant::now();
    while !watches_by_session(&server)
        .get(&session)
        .is_some_and(|paths| paths.contains(&lock_path))
    {
        assert!(
            started.elapsed() < PATIENCE,
            "the second consumer never watched {lock_path}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    expire_and_await_new_session(&server.connect_string(), &first_warden).await;
    let reason = within("the lock to count as lost", lost).await;
    assert!(
        matches!(
            reason,
            LostReason::Lost | LostReason::NewSession | LostReason::Suspended
        ),
        "{reason:?}"
    );
    assert_eq!(delivery.ack().await, Err(Error::SessionExpired));

    let (_other, again) = within("the item again", waiting).await.expect("task");
    let again = again.expect("next");
    assert_eq!(again.item(), "job");
    again.ack().await.expect("ack");
    assert_eq!(second.len().await.expect("len"), 0);
    assert!(children_of(&second_warden, &locks).await.is_empty());
}

#[tokio::test]
async fn released_requeued_and_dropped_items_come_back() {
    let server = start_server().await;
    let w = warden(&server.connect_string()).await;
    let path = unique_path("queue-requeue");
    let locks = format!("{path}-locks");
    let queue = DistributedQueue::new(&w, &path, Utf8Serializer).lock_path(&locks);
    for item in ["a", "b"] {
        queue.put(&item.to_owned()).await.expect("put");
    }
    let mut consumer = queue.consumer();
    let a = consumer.next().await.expect("a");
    assert_eq!(a.item(), "a");
    a.release().await;
    // A new consumer lists afresh; the released item is first again.
    let mut consumer = queue.consumer();
    let a = consumer.next().await.expect("a again");
    assert_eq!(a.item(), "a");
    a.requeue().await.expect("requeue");
    let b = consumer.next().await.expect("b");
    assert_eq!(b.item(), "b");
    drop(b);
    // The dropped delivery's lock goes in the background; then b is free again.
    await_children(&w, &locks, 0).await;
    let mut consumer = queue.consumer();
    let mut order = Vec::new();
    while order.len() < 2 {
        let d = within("an item", consumer.next()).await.expect("next");
        order.push(d.item().clone());
        d.ack().await.expect("ack");
    }
    assert_eq!(order, ["b", "a"], "the requeued item went to the end");
    assert_eq!(queue.len().await.expect("len"), 0);
    assert!(children_of(&w, &locks).await.is_empty());
}

/// `SinkExt::send` without the `sink` feature of futures-util: ready, start, flush.
async fn send<I, S: Sink<I> + Unpin>(sink: &mut S, item: I) -> Result<(), S::Error> {
    poll_fn(|cx| Pin::new(&mut *sink).poll_ready(cx)).await?;
    Pin::new(&mut *sink).start_send(item)?;
    poll_fn(|cx| Pin::new(&mut *sink).poll_flush(cx)).await
}

#[tokio::test]
async fn the_sink_and_the_stream_carry_every_item_in_order() {
    let server = start_server().await;
    let w = warden(&server.connect_string()).await;
    let path = unique_path("queue-sink");
    let queue = DistributedQueue::new(&w, &path, JsonSerializer::<(u32, String)>::new())
        .max_items(NonZeroUsize::new(5).expect("non-zero"));
    const N: u32 = 50;
    let producer = tokio::spawn({
        let mut sink = queue.sink();
        async move {
            for i in 0..N {
                send(&mut sink, (i, format!("n{i}"))).await.expect("send");
            }
            poll_fn(|cx| Pin::new(&mut sink).poll_close(cx))
                .await
                .expect("close");
        }
    });
    let mut stream = queue.stream();
    for i in 0..N {
        let d = within("an item", stream.next())
            .await
            .expect("stream open")
            .expect("item");
        assert_eq!(d.item(), &(i, format!("n{i}")));
        d.ack().await.expect("ack");
    }
    within("the producer", producer).await.expect("producer");

    // Several items in one node (Curator's `putMulti`) come as one delivery.
    let batch: Vec<(u32, String)> = (0..3).map(|i| (N + i, format!("m{i}"))).collect();
    queue.put_multi(&batch).await.expect("put_multi");
    let d = within("the batch", stream.next())
        .await
        .expect("stream open")
        .expect("item");
    assert_eq!(d.items().cloned().collect::<Vec<_>>(), batch);
    d.ack().await.expect("ack");
}

#[tokio::test]
async fn items_are_removed_by_id() {
    let server = start_server().await;
    let w = warden(&server.connect_string()).await;
    let path = unique_path("queue-id");
    let queue = DistributedIdQueue::new(&w, &path, Utf8Serializer);
    for (item, id) in [("a", "x"), ("b", "y/1"), ("c", "x"), ("d", "z")] {
        queue.put(&item.to_owned(), id).await.expect("put");
    }
    assert!(matches!(
        queue.put(&"e".to_owned(), "").await,
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(queue.remove("x").await.expect("remove x"), 2);
    assert_eq!(queue.remove("y/1").await.expect("remove y/1"), 1);
    assert_eq!(queue.remove("nothing").await.expect("remove"), 0);
    let d = queue.consumer().next().await.expect("next");
    assert_eq!(d.item(), "d");
    assert_eq!(queue.len().await.expect("len"), 0);
}

#[tokio::test]
async fn an_undecodable_node_is_reported_and_skipped() {
    let server = start_server().await;
    let w = warden(&server.connect_string()).await;
    let path = unique_path("queue-corrupt");
    let queue = DistributedQueue::new(&w, &path, Utf8Serializer);
    queue.create_paths().await.expect("paths");
    w.create(&format!("{path}/queue-"), b"not an item")
        .mode(CreateMode::PersistentSequential)
        .await
        .expect("corrupt node");
    queue.put(&"good".to_owned()).await.expect("put");
    let mut consumer = queue.consumer();
    match consumer.next().await {
        Err(Error::InvalidArgument(why)) => assert!(why.contains("queue-"), "{why}"),
        other => panic!("expected the corrupt node to be reported, got {other:?}"),
    }
    let d = consumer.next().await.expect("next");
    assert_eq!(d.item(), "good");
    assert_eq!(queue.len().await.expect("len"), 0);
}

/// kazoo's `Queue` driven line by line: `put <text>`, `get` (prints `got <text>` or `none`).
const KAZOO_QUEUE: &str = r#"
import sys
from kazoo.client import KazooClient

zk = KazooClient(hosts=sys.argv[1])
zk.start(timeout=30)
queue = zk.Queue(sys.argv[2])
print("ready", flush=True)
for line in sys.stdin:
    cmd = line.split()
    if not cmd:
        continue
    if cmd[0] == "put":
        queue.put(cmd[1].encode())
        print("put", flush=True)
    elif cmd[0] == "get":
        got = queue.get()
        print("none" if got is None else "got " + got.decode(), flush=True)
zk.stop()
zk.close()
"#;

#[tokio::test]
async fn the_simple_queue_shares_nodes_with_kazoo() {
    let server = start_server().await;
    let w = warden(&server.connect_string()).await;
    let path = unique_path("queue-kazoo");
    let mut kazoo = tokio::process::Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(KAZOO_QUEUE)
        .arg(server.connect_string())
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 with kazoo (scripts/install-zookeeper.sh --with-peers)");
    let mut stdin = kazoo.stdin.take().expect("stdin");
    let mut lines = BufReader::new(kazoo.stdout.take().expect("stdout")).lines();
    let mut ask = async |command: &str| -> String {
        stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .expect("to kazoo");
        within("kazoo", lines.next_line())
            .await
            .expect("from kazoo")
            .expect("kazoo ended")
    };
    assert_eq!(ask("").await, "ready");

    // Ours, taken by kazoo in order.
    let ours = SimpleDistributedQueue::new(&w, &path);
    for i in 0..5 {
        ours.offer(format!("r{i}").as_bytes()).await.expect("offer");
    }
    for i in 0..5 {
        assert_eq!(ask("get").await, format!("got r{i}"));
    }
    assert_eq!(ask("get").await, "none");
    assert_eq!(ours.poll().await.expect("poll"), None);

    // kazoo's (default priority 100), taken by ours in order.
    let theirs = SimpleDistributedQueue::with_prefix(&w, &path, "entry-100-");
    for i in 0..5 {
        assert_eq!(ask(&format!("put k{i}")).await, "put");
    }
    assert_eq!(
        theirs.peek().await.expect("peek").as_deref(),
        Some(&b"k0"[..])
    );
    for i in 0..5 {
        let got = within("an item", theirs.take()).await.expect("take");
        assert_eq!(got, format!("k{i}").as_bytes());
    }
    assert_eq!(
        theirs
            .poll_timeout(Duration::from_millis(50))
            .await
            .expect("poll"),
        None
    );
    assert_eq!(theirs.remove().await, Err(Error::NoNode));
}

/// One plain consumer of the fault run: records each item, stops at the first `stop`.
async fn plain_consumer(
    queue: DistributedQueue<String>,
    got: Arc<StdMutex<Vec<String>>>,
    progress: watch::Sender<usize>,
) {
    let mut consumer = queue.consumer();
    loop {
        let d = consumer.next().await.expect("a consumer error");
        if d.item() == "stop" {
            return;
        }
        got.lock().expect("got").push(d.item().clone());
        progress.send_modify(|n| *n += 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_consumers_lose_only_items_whose_delete_reply_was_lost() {
    const M: usize = 300;
    const CONSUMERS: usize = 2;
    let server = start_server().await;
    let connect = server.connect_string();
    let producer_warden = warden(&connect).await;
    let proxy = FaultProxy::start(server.addr()).await.expect("proxy");
    let path = unique_path("queue-plain-faults");
    let producer = DistributedQueue::new(&producer_warden, &path, Utf8Serializer);
    let items: Vec<String> = (0..M).map(|i| format!("p-{i}")).collect();
    for item in &items {
        producer.put(item).await.expect("put");
    }

    let got = Arc::new(StdMutex::new(Vec::new()));
    let (progress, mut consumed) = watch::channel(0usize);
    let mut wardens = Vec::new();
    let mut consumers = Vec::new();
    for _ in 0..CONSUMERS {
        let w = warden(&proxy.connect_string()).await;
        let queue = DistributedQueue::new(&w, &path, Utf8Serializer);
        consumers.push(tokio::spawn(plain_consumer(
            queue,
            got.clone(),
            progress.clone(),
        )));
        wardens.push(w);
    }

    // Episode 1: every reply is lost (a delete in flight lands, its consumer never hears).
    within("a third consumed", consumed.wait_for(|n| *n >= M / 3))
        .await
        .expect("progress");
    proxy.drop_replies();
    await_state(&wardens[0], ConnectionState::Suspended).await;
    await_state(&wardens[1], ConnectionState::Suspended).await;
    proxy.pass_through();
    // Episode 2: the first consumer's session expires.
    within(
        "two thirds consumed",
        consumed.wait_for(|n| *n >= 2 * M / 3),
    )
    .await
    .expect("progress");
    expire_and_await_new_session(&connect, &wardens[0]).await;

    await_children(&producer_warden, &path, 0).await;
    for _ in 0..CONSUMERS {
        producer.put(&"stop".to_owned()).await.expect("put stop");
    }
    for consumer in consumers {
        within("a consumer to stop", consumer)
            .await
            .expect("consumer");
    }

    let got = std::mem::take(&mut *got.lock().expect("got"));
    let distinct: BTreeSet<&String> = got.iter().collect();
    assert_eq!(distinct.len(), got.len(), "an item was consumed twice");
    let lost: Vec<&String> = items.iter().filter(|i| !distinct.contains(i)).collect();
    // Each consumer has at most one delete in flight when its replies stop or its session
    // ends: two in the first episode, one in the second.
    assert!(
        lost.len() <= 3,
        "lost more than the faults explain: {lost:?}"
    );
    println!(
        "plain fault run: {M} items, {} consumed, {} lost with a delete reply (Curator's documented loss)",
        got.len(),
        lost.len()
    );
}
