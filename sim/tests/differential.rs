//! The model is kept honest: seeded random sequences of calls (creates of every mode, reads,
//! writes with and without versions, deletes, multi and multiRead, one-shot, persistent and
//! recursive watches) run through the real client against the model and against a real
//! ZooKeeper 3.8, and must give the same codes, data, children, versions and watch events
//! (session ids and zxid values aside; how zxids relate inside a stat is compared).
//! `ZKSIM_DIFF_SEQUENCES` sets how many sequences (default 300).

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use zkwarden::proto::{AddWatchMode, CreateMode, Stat};
use zkwarden::testing::ZkServer;
use zkwarden::{
    Client, CreateOptions, Error, MultiReadOp, OneshotWatcher, Op, OpResult, PersistentWatcher,
};
use zkwarden_sim::model::Model;
use zkwarden_sim::net::{FaultRates, Plan, SimNet};
use zkwarden_sim::trace::Trace;

/// Node names under each sequence's own root.
const NAMES: [&str; 5] = ["a", "b", "a/x", "a/y", "b/z"];

/// One call of a sequence.
#[derive(Debug, Clone)]
enum Call {
    Create(usize, CreateMode, u8),
    Set(usize, Option<i32>, u8),
    Delete(usize, Option<i32>),
    GetData(usize, bool),
    Exists(usize, bool),
    Children(Option<usize>, bool),
    AllChildren,
    AddWatch(usize, bool),
    Multi(Vec<Call>),
    MultiRead(Vec<(usize, bool)>),
}

fn gen_call(rng: &mut fastrand::Rng, in_multi: bool) -> Call {
    let node = rng.usize(..NAMES.len());
    let version = match rng.u8(..3) {
        0 => None,
        n => Some(i32::from(n) - 1),
    };
    let pick = if in_multi { rng.u8(..4) } else { rng.u8(..12) };
    match pick {
        0 => {
            let modes = [
                CreateMode::Persistent,
                CreateMode::Persistent,
                CreateMode::Ephemeral,
                CreateMode::PersistentSequential,
                CreateMode::EphemeralSequential,
                CreateMode::Container,
                CreateMode::PersistentWithTtl,
            ];
            let n = if in_multi { 5 } else { modes.len() };
            Call::Create(node, modes[rng.usize(..n)], rng.u8(..4))
        }
        1 => Call::Set(node, version, rng.u8(..4)),
        2 => Call::Delete(node, version),
        3 => Call::Exists(node, false),
        4 => Call::GetData(node, rng.bool()),
        5 => Call::Exists(node, rng.bool()),
        6 => Call::Children(rng.bool().then(|| rng.usize(..2)), rng.bool()),
        7 => Call::AllChildren,
        8 => Call::AddWatch(rng.usize(..2), rng.bool()),
        9 => Call::Multi((0..rng.usize(1..=3)).map(|_| gen_call(rng, true)).collect()),
        10 => Call::MultiRead(
            (0..rng.usize(1..=3))
                .map(|_| (rng.usize(..NAMES.len()), rng.bool()))
                .collect(),
        ),
        _ => Call::Create(node, CreateMode::Persistent, rng.u8(..4)),
    }
}

/// A stat as compared: everything but the ids and times, and how its zxids relate.
fn stat(s: &Stat, session: i64) -> String {
    let owner = if s.ephemeral_owner == session {
        "session".to_string()
    } else {
        s.ephemeral_owner.to_string()
    };
    format!(
        "v{} cv{} av{} len{} n{} owner {owner} m=c {} p=c {}",
        s.version,
        s.cversion,
        s.aversion,
        s.data_length,
        s.num_children,
        s.mzxid == s.czxid,
        s.pzxid == s.czxid,
    )
}

fn err(e: &Error) -> String {
    match e {
        Error::MultiFailed {
            index,
            code,
            results,
        } => {
            format!("multi failed at {index}: {code:?} {results:?}")
        }
        other => format!("error {}", other.kind_name()),
    }
}

/// The watches a sequence left, polled after every call (the events a call causes come
/// before its reply, so they are there by then).
#[derive(Default)]
struct Watches {
    oneshot: Vec<(usize, OneshotWatcher)>,
    persistent: Vec<(usize, PersistentWatcher)>,
    next: usize,
}

impl Watches {
    fn drain(&mut self, base: &str, out: &mut Vec<String>) {
        let mut cx = Context::from_waker(Waker::noop());
        let strip = |p: &str| p.strip_prefix(base).unwrap_or(p).to_string();
        self.oneshot
            .retain_mut(|(id, w)| match Pin::new(w).poll(&mut cx) {
                Poll::Ready(Ok(e)) => {
                    out.push(format!(
                        "  watch {id}: {:?} {}",
                        e.event_type,
                        strip(&e.path)
                    ));
                    false
                }
                Poll::Ready(Err(e)) => {
                    out.push(format!("  watch {id}: {}", err(&e)));
                    false
                }
                Poll::Pending => true,
            });
        for (id, w) in &mut self.persistent {
            while let Poll::Ready(Some(e)) = futures_core::Stream::poll_next(Pin::new(w), &mut cx) {
                out.push(format!(
                    "  persistent {id}: {:?} {}",
                    e.event_type,
                    strip(&e.path)
                ));
            }
        }
    }

    fn add(&mut self, w: OneshotWatcher) -> usize {
        self.next += 1;
        self.oneshot.push((self.next, w));
        self.next
    }
}

fn create_options(mode: CreateMode) -> CreateOptions {
    let options = CreateOptions::new(mode);
    if mode.is_ttl() {
        options.ttl(Duration::from_secs(600))
    } else {
        options
    }
}

fn multi_op(base: &str, call: &Call) -> Op {
    let path = |i: &usize| format!("{base}/{}", NAMES[*i]);
    match call {
        Call::Create(i, mode, d) => {
            Op::create(path(i), vec![*d; *d as usize], create_options(*mode))
        }
        Call::Set(i, v, d) => Op::set_data(path(i), vec![*d; 2], *v),
        Call::Delete(i, v) => Op::delete(path(i), *v),
        Call::Exists(i, _) => Op::check(path(i), Some(0)),
        _ => Op::check(path(&0), None),
    }
}

/// Runs `call`; returns what it gave, as compared.
async fn run(client: &Client, base: &str, call: &Call, watches: &mut Watches) -> String {
    let session = client.session_id().0;
    let path = |i: &usize| format!("{base}/{}", NAMES[*i]);
    let strip = |p: &str| p.strip_prefix(base).unwrap_or(p).to_string();
    match call {
        Call::Create(i, mode, d) => {
            match client
                .create2(&path(i), &vec![*d; *d as usize], create_options(*mode))
                .await
            {
                Ok((p, s)) => format!("created {} {}", strip(&p), stat(&s, session)),
                Err(e) => err(&e),
            }
        }
        Call::Set(i, v, d) => match client.set_data(&path(i), &[*d; 2], *v).await {
            Ok(s) => format!("set {}", stat(&s, session)),
            Err(e) => err(&e),
        },
        Call::Delete(i, v) => match client.delete(&path(i), *v).await {
            Ok(()) => "deleted".into(),
            Err(e) => err(&e),
        },
        Call::GetData(i, false) => match client.get_data(&path(i)).await {
            Ok((d, s)) => format!("data {d:?} {}", stat(&s, session)),
            Err(e) => err(&e),
        },
        Call::GetData(i, true) => match client.get_data_and_watch(&path(i)).await {
            Ok((d, s, w)) => format!("data {d:?} {} watch {}", stat(&s, session), watches.add(w)),
            Err(e) => err(&e),
        },
        Call::Exists(i, false) => match client.exists(&path(i)).await {
            Ok(s) => format!("exists {:?}", s.map(|s| stat(&s, session))),
            Err(e) => err(&e),
        },
        Call::Exists(i, true) => match client.exists_and_watch(&path(i)).await {
            Ok((s, w)) => format!(
                "exists {:?} watch {}",
                s.map(|s| stat(&s, session)),
                watches.add(w)
            ),
            Err(e) => err(&e),
        },
        Call::Children(i, watch) => {
            let p = i.map_or(base.to_string(), |i| path(&i));
            let result = if *watch {
                client
                    .get_children2_and_watch(&p)
                    .await
                    .map(|(c, s, w)| (c, s, Some(watches.add(w))))
            } else {
                client.get_children2(&p).await.map(|(c, s)| (c, s, None))
            };
            match result {
                Ok((mut c, s, w)) => {
                    // ZooKeeper lists children in hash order.
                    c.sort();
                    format!("children {c:?} {} watch {w:?}", stat(&s, session))
                }
                Err(e) => err(&e),
            }
        }
        Call::AllChildren => match client.get_all_children_number(base).await {
            Ok(n) => format!("all children {n}"),
            Err(e) => err(&e),
        },
        Call::AddWatch(i, recursive) => {
            let mode = if *recursive {
                AddWatchMode::PersistentRecursive
            } else {
                AddWatchMode::Persistent
            };
            match client.add_watch(&path(i), mode).await {
                Ok(w) => {
                    watches.next += 1;
                    watches.persistent.push((watches.next, w));
                    format!("persistent watch {}", watches.next)
                }
                Err(e) => err(&e),
            }
        }
        Call::Multi(calls) => {
            let ops: Vec<Op> = calls.iter().map(|c| multi_op(base, c)).collect();
            match client.multi(&ops).await {
                Ok(results) => format!("multi {}", results_text(&results, base, session)),
                Err(e) => err(&e),
            }
        }
        Call::MultiRead(reads) => {
            let ops: Vec<MultiReadOp> = reads
                .iter()
                .map(|(i, data)| {
                    if *data {
                        MultiReadOp::GetData(path(i))
                    } else {
                        MultiReadOp::GetChildren(path(i))
                    }
                })
                .collect();
            match client.multi_read(&ops).await {
                Ok(results) => format!("multi_read {}", results_text(&results, base, session)),
                Err(e) => err(&e),
            }
        }
    }
}

fn results_text(results: &[OpResult], base: &str, session: i64) -> String {
    let strip = |p: &str| p.strip_prefix(base).unwrap_or(p).to_string();
    let texts: Vec<String> = results
        .iter()
        .map(|r| match r {
            OpResult::Create { path, stat: s } => {
                format!("created {} {:?}", strip(path), s.map(|s| stat(&s, session)))
            }
            OpResult::SetData { stat: s } => format!("set {}", stat(s, session)),
            OpResult::GetData { data, stat: s } => format!("data {data:?} {}", stat(s, session)),
            OpResult::GetChildren { children } => {
                let mut c = children.clone();
                c.sort();
                format!("children {c:?}")
            }
            other => format!("{other:?}"),
        })
        .collect();
    texts.join("; ")
}

/// Runs sequence `seed` on `client` under its own root; returns one line per call and event.
async fn sequence(client: &Client, seed: u64) -> (Vec<Call>, Vec<String>) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let base = format!("/d{seed}");
    let mut out = Vec::new();
    if let Err(e) = client.create(&base, b"", CreateMode::Persistent).await {
        out.push(format!("root: {}", err(&e)));
    }
    let calls: Vec<Call> = (0..rng.usize(10..30))
        .map(|_| gen_call(&mut rng, false))
        .collect();
    let mut watches = Watches::default();
    for call in &calls {
        out.push(run(client, &base, call, &mut watches).await);
        // A sync makes sure every event the call caused has arrived (they precede its reply
        // on one connection; the sync is for events of ephemerals and containers).
        let _ = client.sync(&base).await;
        watches.drain(&base, &mut out);
    }
    (calls, out)
}

#[test]
fn the_model_answers_as_zookeeper_does() {
    let count: u64 = std::env::var("ZKSIM_DIFF_SEQUENCES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let server = ZkServer::builder()
        .extra_config("extendedTypesEnabled", "true")
        .start()
        .expect("a ZooKeeper server for the differential test");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let model = Arc::new(Mutex::new(Model::new(
            Duration::from_millis(200),
            tokio::time::Instant::now(),
        )));
        let net = SimNet {
            model,
            plan: Arc::new(Mutex::new(Plan::new(0, FaultRates::NONE, Duration::from_secs(4)))),
            trace: Trace::new(false),
        };
        let real = Client::connect(&server.connect_string())
            .await
            .expect("a session on the real server");
        let simulated = Client::builder("10.0.0.1:2181")
            .dialer(net)
            .connect()
            .await
            .expect("a session on the model");
        for seed in 0..count {
            let (calls, expected) = sequence(&real, seed).await;
            let (_, got) = sequence(&simulated, seed).await;
            if expected != got {
                let first = expected
                    .iter()
                    .zip(&got)
                    .position(|(a, b)| a != b)
                    .unwrap_or(expected.len().min(got.len()));
                panic!(
                    "sequence {seed} differs at line {first}:\n  ZooKeeper: {:?}\n  model:     {:?}\n\
                     calls: {calls:#?}\nZooKeeper's lines: {expected:#?}\nmodel's lines: {got:#?}",
                    expected.get(first),
                    got.get(first),
                );
            }
        }
    });
}
