//! The queues side by side with Apache Curator 5.4 on the same znodes: a Java peer
//! (`tests/java/CuratorQueuePeer.java`, compiled here against the Debian Curator jars)
//! produces what Rust consumes and consumes what Rust produces, for every queue kind, and
//! lock-safe Rust and Curator consumers share one queue while the Rust consumers' sessions
//! expire and their connection is blackholed.
//!
//! Item counts: 1,000 for the plain queue in each direction and for the fault run (the issue
//! asks for 10,000; 1,000 keeps the suite's time budget), a few hundred or fewer for the
//! other kinds, whose point is order and layout.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::java_peer::{self, Peer, Scratch};
use common::znodes::{await_state, children_of, expire_and_await_new_session};
use common::{start_server, unique_path, warden, within};
use tokio::sync::{OnceCell, watch};
use tokio_util::sync::CancellationToken;
use zkwarden::testing::FaultProxy;
use zkwarden::{ConnectionState, Error, Warden};
use zkwarden_recipes::queue::{
    DistributedDelayQueue, DistributedIdQueue, DistributedPriorityQueue, DistributedQueue,
    SimpleDistributedQueue, Utf8Serializer,
};

const PEER: &str = "CuratorQueuePeer";
/// Items per direction for the plain queue, and in the fault run.
const N: usize = 1_000;

/// The peer, compiled once per test binary into Cargo's scratch directory for tests
/// (`javac` costs seconds; every test here shares its classes).
struct Java {
    classpath: String,
    classes: PathBuf,
    /// Files a test hands to the peer.
    scratch: Scratch,
}

static COMPILED: OnceCell<(String, PathBuf)> = OnceCell::const_new();

impl Java {
    async fn prepare(test: &str) -> Java {
        let (classpath, classes) = COMPILED
            .get_or_init(|| async {
                let classpath = java_peer::classpath()
                    .unwrap_or_else(|why| panic!("the Curator peer needs: {why}"));
                let classes = Path::new(env!("CARGO_TARGET_TMPDIR")).join(PEER);
                std::fs::create_dir_all(&classes).expect("class directory");
                if let Err(why) =
                    java_peer::compile(&classpath, &format!("{PEER}.java"), &classes).await
                {
                    panic!("cannot compile the Curator peer: {why}");
                }
                (classpath, classes)
            })
            .await
            .clone();
        Java {
            classpath,
            classes,
            scratch: Scratch::new(test),
        }
    }

    async fn start(&self, args: &[&str]) -> Peer {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        java_peer::start(&self.classpath, &self.classes, PEER, &args).await
    }
}

/// Reads the peer's lines until `done`, returning the items of its `got` lines, then waits
/// for it to exit successfully.
async fn gots_until_done(mut peer: Peer) -> Vec<String> {
    let mut got = Vec::new();
    within("the Curator peer to finish", async {
        while let Some(line) = peer.lines.next_line().await.expect("peer stdout") {
            if line == "done" {
                return;
            }
            if let Some(item) = line.strip_prefix("got ") {
                got.push(item.to_owned());
            }
        }
        panic!(
            "the Curator peer ended without `done` after {} items",
            got.len()
        );
    })
    .await;
    let status = within("the Curator peer to exit", peer.child.wait())
        .await
        .expect("wait for the peer");
    assert!(status.success(), "the Curator peer failed: {status}");
    got
}

/// Takes `n` items off `queue` with one Rust consumer, acking each, in delivery order.
async fn drain<K>(queue: &zkwarden_recipes::queue::Queue<String, K>, n: usize) -> Vec<String> {
    let mut consumer = queue.consumer();
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        let d = within("an item", consumer.next()).await.expect("next");
        got.push(d.item().clone());
        d.ack().await.expect("ack");
    }
    got
}

fn tagged(tag: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{tag}-{i}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_producer_curator_consumer_and_back_each_item_once_in_order() {
    let java = Java::prepare("queue_plain").await;
    let server = start_server().await;
    let connect = server.connect_string();
    let w = warden(&connect).await;
    let path = unique_path("queue-plain");
    let queue = DistributedQueue::new(&w, &path, Utf8Serializer);

    // Rust -> Curator.
    let consumer = java
        .start(&[
            "consume",
            &connect,
            "plain",
            &path,
            "-",
            &(N + 3).to_string(),
        ])
        .await;
    let started = std::time::Instant::now();
    // Sixteen producers at once; the sequence numbers the server gave say the order.
    let mut puts = tokio::task::JoinSet::new();
    let items = Arc::new(Mutex::new(tagged("r", N)));
    for _ in 0..16 {
        let (queue, items) = (queue.clone(), items.clone());
        puts.spawn(async move {
            let mut done = Vec::new();
            loop {
                let Some(item) = items.lock().expect("items").pop() else {
                    return done;
                };
                let node = queue.put(&item).await.expect("put");
                done.push((node, item));
            }
        });
    }
    let mut order: Vec<(String, String)> = Vec::new();
    while let Some(done) = puts.join_next().await {
        order.extend(done.expect("producer"));
    }
    order.sort();
    // Three more in one node (Curator's `putMulti` format), which Curator reads one by one.
    let batch = tagged("m", 3);
    queue.put_multi(&batch).await.expect("put_multi");
    let got = gots_until_done(consumer).await;
    println!("rust -> curator: {N} items in {:?}", started.elapsed());
    let mut expected: Vec<String> = order.into_iter().map(|(_, item)| item).collect();
    expected.extend(batch);
    assert_eq!(
        got, expected,
        "Curator took every Rust item once, in sequence order"
    );

    // Curator -> Rust, consumed while it is produced.
    let producer = java
        .start(&["produce", &connect, "plain", &path, &N.to_string(), "j"])
        .await;
    let started = std::time::Instant::now();
    let got = drain(&queue, N).await;
    println!("curator -> rust: {N} items in {:?}", started.elapsed());
    gots_until_done(producer).await;
    assert_eq!(
        got,
        tagged("j", N),
        "Rust took every Curator item once, in order"
    );
    assert_eq!(queue.len().await.expect("len"), 0);
}

/// The priority the peer gives item `i`.
fn peer_priority(i: usize) -> i32 {
    (i as i32 * 7) % 5 - 2
}

/// `items` (`<tag>-<i>`) sorted as a priority queue hands them out.
fn by_priority(items: &[String]) -> Vec<String> {
    let mut keyed: Vec<(i32, usize, String)> = items
        .iter()
        .map(|item| {
            let i: usize = item
                .rsplit('-')
                .next()
                .expect("index")
                .parse()
                .expect("index");
            (peer_priority(i), i, item.clone())
        })
        .collect();
    keyed.sort();
    keyed.into_iter().map(|(_, _, item)| item).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priority_queue_orders_like_curator_both_ways() {
    const M: usize = 100;
    let java = Java::prepare("queue_priority").await;
    let server = start_server().await;
    let connect = server.connect_string();
    let w = warden(&connect).await;
    let path = unique_path("queue-priority");
    let queue = DistributedPriorityQueue::new(&w, &path, Utf8Serializer);

    let producer = java
        .start(&["produce", &connect, "priority", &path, &M.to_string(), "j"])
        .await;
    gots_until_done(producer).await;
    let got = drain(&queue, M).await;
    assert_eq!(got, by_priority(&tagged("j", M)));

    for (i, item) in tagged("r", M).iter().enumerate() {
        queue.put(item, peer_priority(i)).await.expect("put");
    }
    let consumer = java
        .start(&["consume", &connect, "priority", &path, "-", &M.to_string()])
        .await;
    let got = gots_until_done(consumer).await;
    assert_eq!(got, by_priority(&tagged("r", M)));
}

fn epoch_millis(at: SystemTime) -> u128 {
    at.duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_queue_items_wait_for_their_time_both_ways() {
    const M: usize = 10;
    const DELAY: Duration = Duration::from_millis(1_000);
    let java = Java::prepare("queue_delay").await;
    let server = start_server().await;
    let connect = server.connect_string();
    let w = warden(&connect).await;
    let path = unique_path("queue-delay");
    let queue = DistributedDelayQueue::new(&w, &path, Utf8Serializer);

    // Curator -> Rust: items "<tag>-<i>-<due ms>", none handed out before it is due.
    let producer = java
        .start(&[
            "produce",
            &connect,
            "delay",
            &path,
            &M.to_string(),
            "j",
            &DELAY.as_millis().to_string(),
        ])
        .await;
    let mut consumer = queue.consumer();
    let mut got = BTreeSet::new();
    while got.len() < M {
        let d = within("a due item", consumer.next()).await.expect("next");
        let now = epoch_millis(SystemTime::now());
        let due: u128 = d
            .item()
            .rsplit('-')
            .next()
            .expect("due")
            .parse()
            .expect("due");
        assert!(now >= due, "{} handed out at {now}, before {due}", d.item());
        got.insert(d.item().split('-').take(2).collect::<Vec<_>>().join("-"));
        d.ack().await.expect("ack");
    }
    gots_until_done(producer).await;
    assert_eq!(got, tagged("j", M).into_iter().collect());

    // Rust -> Curator: the peer, already waiting, prints each item when it takes it.
    let mut consumer = java
        .start(&["consume", &connect, "delay", &path, "-", &M.to_string()])
        .await;
    let due = SystemTime::now() + DELAY;
    for item in tagged("r", M) {
        queue.put(&item, due).await.expect("put");
    }
    let mut seen = BTreeSet::new();
    within("Curator to take the delayed items", async {
        while seen.len() < M {
            let line = consumer
                .lines
                .next_line()
                .await
                .expect("peer stdout")
                .expect("peer ended early");
            if let Some(item) = line.strip_prefix("got ") {
                assert!(
                    SystemTime::now() >= due,
                    "Curator took {item} before it was due"
                );
                seen.insert(item.to_owned());
            }
        }
    })
    .await;
    assert_eq!(gots_until_done(consumer).await, Vec::<String>::new());
    assert_eq!(seen, tagged("r", M).into_iter().collect());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn id_queue_items_are_removed_by_id_both_ways() {
    const M: usize = 10;
    let java = Java::prepare("queue_id").await;
    let server = start_server().await;
    let connect = server.connect_string();
    let w = warden(&connect).await;
    let path = unique_path("queue-id");
    let queue = DistributedIdQueue::new(&w, &path, Utf8Serializer);

    // Rust puts, Curator removes two ids, Rust takes the rest in order.
    for (i, item) in tagged("r", M).iter().enumerate() {
        queue.put(item, &format!("id-{i}")).await.expect("put");
    }
    let mut remover = java
        .start(&["remove", &connect, &path, "id-3", "id-7"])
        .await;
    let mut removed = Vec::new();
    while let Some(line) = remover.lines.next_line().await.expect("peer stdout") {
        if line == "done" {
            break;
        }
        removed.push(line);
    }
    assert_eq!(removed, ["removed id-3 1", "removed id-7 1"]);
    let mut expected = tagged("r", M);
    expected.retain(|item| item != "r-3" && item != "r-7");
    assert_eq!(drain(&queue, M - 2).await, expected);
    assert_eq!(queue.len().await.expect("len"), 0);

    // Curator puts, Rust removes one id and takes the rest.
    let producer = java
        .start(&["produce", &connect, "id", &path, &M.to_string(), "j"])
        .await;
    gots_until_done(producer).await;
    assert_eq!(queue.remove("id-5").await.expect("remove"), 1);
    let mut expected = tagged("j", M);
    expected.retain(|item| item != "j-5");
    assert_eq!(drain(&queue, M - 1).await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_queue_shares_nodes_with_curator() {
    const M: usize = 20;
    let java = Java::prepare("queue_simple").await;
    let server = start_server().await;
    let connect = server.connect_string();
    let w = warden(&connect).await;
    let path = unique_path("queue-simple");
    let queue = SimpleDistributedQueue::new(&w, &path);

    let producer = java
        .start(&["simple-offer", &connect, &path, &M.to_string(), "j"])
        .await;
    let mut got = Vec::new();
    for _ in 0..M {
        let bytes = within("an item", queue.take()).await.expect("take");
        got.push(String::from_utf8(bytes.to_vec()).expect("utf-8"));
    }
    gots_until_done(producer).await;
    assert_eq!(got, tagged("j", M));

    for item in tagged("r", M) {
        queue.offer(item.as_bytes()).await.expect("offer");
    }
    let consumer = java
        .start(&["simple-take", &connect, &path, &M.to_string()])
        .await;
    assert_eq!(gots_until_done(consumer).await, tagged("r", M));
}

/// What the Rust consumers of the fault run saw.
#[derive(Default)]
struct Tally {
    acked: Vec<String>,
    /// Deliveries whose ack found the lock's session gone (the item stayed queued).
    lapsed: Vec<String>,
    /// Acks whose outcome the session's end left unknown.
    unknown: Vec<String>,
}

/// One lock-safe Rust consumer: takes, works `hold`, acks, until cancelled.
async fn lock_safe_consumer(
    queue: DistributedQueue<String>,
    hold: Duration,
    tally: Arc<Mutex<Tally>>,
    progress: watch::Sender<usize>,
    stop: CancellationToken,
) {
    let mut consumer = queue.consumer();
    loop {
        let delivery = tokio::select! {
            next = consumer.next() => next.expect("a consumer error"),
            () = stop.cancelled() => return,
        };
        let item = delivery.item().clone();
        tokio::time::sleep(hold).await; // the handler's work
        let outcome = delivery.ack().await;
        let mut tally = tally.lock().expect("tally");
        match outcome {
            Ok(()) => {
                tally.acked.push(item);
                progress.send_modify(|n| *n += 1);
            }
            Err(Error::SessionExpired) => tally.lapsed.push(item),
            Err(Error::ConnectionLoss) => tally.unknown.push(item),
            Err(e) => panic!("ack of {item}: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_safe_rust_and_curator_consumers_lose_nothing_through_expiries_and_a_blackhole() {
    const CHUNK: usize = N / 4;
    const HOLD: Duration = Duration::from_millis(2);
    let java = Java::prepare("queue_faults").await;
    let server = start_server().await;
    let connect = server.connect_string();
    let producer_warden = warden(&connect).await;
    let proxy = FaultProxy::start(server.addr()).await.expect("proxy");
    let path = unique_path("queue-faults");
    let locks = format!("{path}-locks");
    let queue = DistributedQueue::new(&producer_warden, &path, Utf8Serializer).lock_path(&locks);
    queue.create_paths().await.expect("paths");

    let stop_file = java.scratch.join("stop");
    let curator = java
        .start(&[
            "consume",
            &connect,
            "plain",
            &path,
            &locks,
            "0",
            &HOLD.as_millis().to_string(),
            &stop_file.display().to_string(),
        ])
        .await;
    let (progress, mut consumed) = watch::channel(0usize);
    // Curator's items, counted as they are printed.
    let curator_got = Arc::new(Mutex::new(Vec::new()));
    let curator_reader = tokio::spawn({
        let curator_got = curator_got.clone();
        let progress = progress.clone();
        async move {
            let mut peer = curator;
            while let Some(line) = peer.lines.next_line().await.expect("peer stdout") {
                if line == "done" {
                    break;
                }
                if let Some(item) = line.strip_prefix("got ") {
                    curator_got.lock().expect("got").push(item.to_owned());
                    progress.send_modify(|n| *n += 1);
                }
            }
            let status = peer.child.wait().await.expect("wait for the peer");
            assert!(status.success(), "the Curator consumer failed: {status}");
        }
    });

    let tally = Arc::new(Mutex::new(Tally::default()));
    let stop = CancellationToken::new();
    let mut consumer_wardens: Vec<Warden> = Vec::new();
    let mut consumers = Vec::new();
    for _ in 0..2 {
        let w = warden(&proxy.connect_string()).await;
        let queue = DistributedQueue::new(&w, &path, Utf8Serializer).lock_path(&locks);
        consumers.push(tokio::spawn(lock_safe_consumer(
            queue,
            HOLD,
            tally.clone(),
            progress.clone(),
            stop.clone(),
        )));
        consumer_wardens.push(w);
    }

    // A quarter from Curator, three from Rust; a fault while each of the first three is
    // being consumed.
    let producer = java
        .start(&["produce", &connect, "plain", &path, &CHUNK.to_string(), "j"])
        .await;
    gots_until_done(producer).await;
    let mut expected: Vec<String> = tagged("j", CHUNK);
    for chunk in 0..3 {
        let until = chunk * CHUNK + CHUNK / 2;
        within(
            "half the chunk consumed",
            consumed.wait_for(|n| *n >= until),
        )
        .await
        .expect("progress");
        if chunk < 2 {
            expire_and_await_new_session(&connect, &consumer_wardens[0]).await;
        } else {
            proxy.blackhole();
            await_state(&consumer_wardens[1], ConnectionState::Suspended).await;
            proxy.reset_all();
            proxy.pass_through();
        }
        let items: Vec<String> = (0..CHUNK)
            .map(|i| format!("r-{}", chunk * CHUNK + i))
            .collect();
        for item in &items {
            queue.put(item).await.expect("put");
        }
        expected.extend(items);
    }

    within("every item consumed", consumed.wait_for(|n| *n >= N))
        .await
        .expect("progress");
    stop.cancel();
    for consumer in consumers {
        within("a Rust consumer to stop", consumer)
            .await
            .expect("consumer");
    }
    std::fs::write(&stop_file, b"").expect("stop file");
    within("the Curator consumer to stop", curator_reader)
        .await
        .expect("reader");

    let tally = std::mem::take(&mut *tally.lock().expect("tally"));
    let curator_got = std::mem::take(&mut *curator_got.lock().expect("got"));
    let mut times: BTreeMap<&str, usize> = BTreeMap::new();
    for item in tally.acked.iter().chain(curator_got.iter()) {
        *times.entry(item).or_default() += 1;
    }
    for item in &tally.unknown {
        // An ack of unknown outcome consumed the item unless someone else did.
        times.entry(item).or_insert(1);
    }
    let twice: Vec<_> = times.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "consumed twice: {twice:?}");
    let lost: Vec<_> = expected
        .iter()
        .filter(|item| !times.contains_key(item.as_str()))
        .collect();
    assert!(lost.is_empty(), "lost: {lost:?}");
    assert_eq!(times.len(), N);
    for item in &tally.lapsed {
        assert_eq!(
            times.get(item.as_str()),
            Some(&1),
            "{item} lapsed and never came back"
        );
    }
    assert_eq!(queue.len().await.expect("len"), 0);
    assert!(children_of(&producer_warden, &locks).await.is_empty());
    println!(
        "fault run: {N} items; rust acked {}, curator took {}, {} deliveries lapsed with \
         their session and were taken again, {} acks of unknown outcome",
        tally.acked.len(),
        curator_got.len(),
        tally.lapsed.len(),
        tally.unknown.len()
    );
}
