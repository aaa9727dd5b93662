//! Our mutex next to kazoo's `Lock` (Debian's python3-kazoo) on the same path: what each side
//! sees of the other's contenders.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;

use common::*;
use zkwarden_recipes::lock::Mutex;

/// A kazoo client driven line by line: `acquire` (blocking), `try <seconds>` (acquire with a
/// timeout), `release`, `quit`. Answers one line per command.
const KAZOO_PEER: &str = r#"
import sys
from kazoo.client import KazooClient
from kazoo.exceptions import LockTimeout

hosts, path, patterns = sys.argv[1], sys.argv[2], [p for p in sys.argv[3:]]
zk = KazooClient(hosts=hosts)
zk.start(timeout=30)
lock = zk.Lock(path, "kazoo-peer", extra_lock_patterns=patterns)
print("ready", flush=True)
for line in sys.stdin:
    cmd = line.split()
    if not cmd:
        continue
    if cmd[0] == "acquire":
        lock.acquire()
        print("held", flush=True)
    elif cmd[0] == "try":
        try:
            got = lock.acquire(timeout=float(cmd[1]))
        except LockTimeout:
            got = False
        print("held" if got else "blocked", flush=True)
    elif cmd[0] == "release":
        lock.release()
        print("released", flush=True)
    elif cmd[0] == "quit":
        break
zk.stop()
zk.close()
"#;

/// A running kazoo peer.
struct KazooPeer {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl KazooPeer {
    fn start(connect: &str, path: &str, extra_patterns: &[&str]) -> KazooPeer {
        let mut child = Command::new("/usr/bin/python3")
            .arg("-c")
            .arg(KAZOO_PEER)
            .arg(connect)
            .arg(path)
            .args(extra_patterns)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run /usr/bin/python3 with kazoo (scripts/install-zookeeper.sh --with-peers)");
        let stdin = child.stdin.take().expect("peer stdin");
        let stdout = child.stdout.take().expect("peer stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut peer = KazooPeer {
            child,
            stdin,
            lines,
        };
        assert_eq!(peer.answer(), "ready");
        peer
    }

    /// Sends `command` without waiting for its answer.
    fn send(&mut self, command: &str) {
        writeln!(self.stdin, "{command}").expect("write to the kazoo peer");
        self.stdin.flush().expect("flush to the kazoo peer");
    }

    /// The next line the peer prints (the kazoo session may take a while to start).
    fn answer(&mut self) -> String {
        self.lines
            .recv_timeout(PATIENCE)
            .expect("the kazoo peer answers")
    }

    fn ask(&mut self, command: &str) -> String {
        self.send(command);
        self.answer()
    }
}

impl Drop for KazooPeer {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn with_kazoo_contenders_our_mutex_waits_for_a_kazoo_holder() {
    let server = start_server().await;
    let warden = warden(&server.connect_string()).await;
    let path = unique_path("kazoo-lock");
    let connect = server.connect_string();
    let peer_path = path.clone();
    let mut peer = blocking(move || {
        let mut peer = KazooPeer::start(&connect, &peer_path, &[]);
        assert_eq!(peer.ask("acquire"), "held");
        peer
    })
    .await;

    let plain = Mutex::new(&warden, &path);
    let aware = Mutex::new(&warden, &path).with_kazoo_contenders(true);

    // Told about kazoo's nodes, our mutex sees the lock as taken.
    assert!(
        aware.try_lock().await.expect("try_lock").is_none(),
        "a kazoo holder must keep a kazoo-aware mutex out"
    );
    // Without it, it does not: the two formats do not see each other by default.
    let guard = plain
        .try_lock()
        .await
        .expect("try_lock")
        .expect("a plain mutex ignores kazoo's nodes");
    guard.release().await.expect("release");

    // A waiting kazoo-aware acquire gets the lock once kazoo lets go, not before.
    let waiter = tokio::spawn(async move { aware.lock().await });
    let children = within("our contender node appears", async {
        loop {
            let children = warden.get_children(&path).await.expect("list");
            if children.len() == 2 {
                return children;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(children.iter().any(|c| c.contains("__lock__")));
    assert!(!waiter.is_finished(), "entered while kazoo held the lock");
    peer = blocking(move || {
        assert_eq!(peer.ask("release"), "released");
        peer
    })
    .await;
    let guard = within("the lock after kazoo released it", waiter)
        .await
        .expect("acquire task")
        .expect("lock");
    guard.release().await.expect("release");
    drop(peer);
}

#[tokio::test]
async fn kazoo_with_extra_patterns_waits_for_our_holder() {
    let server = start_server().await;
    let warden = warden(&server.connect_string()).await;
    let path = unique_path("kazoo-lock");
    let guard = Mutex::new(&warden, &path).lock().await.expect("lock");

    let connect = server.connect_string();
    let peer_path = path.clone();
    let peer = blocking(move || {
        // Unmodified kazoo walks straight in past our holder...
        let mut unaware = KazooPeer::start(&connect, &peer_path, &[]);
        assert_eq!(
            unaware.ask("try 1"),
            "held",
            "plain kazoo ignores Curator-format nodes"
        );
        assert_eq!(unaware.ask("release"), "released");
        drop(unaware);
        // ...while kazoo told about `-lock-` nodes queues behind it.
        let mut aware = KazooPeer::start(&connect, &peer_path, &["-lock-"]);
        assert_eq!(aware.ask("try 1"), "blocked");
        aware.send("acquire");
        aware
    })
    .await;
    // Release ours; the queued kazoo acquire completes.
    guard.release().await.expect("release");
    let mut peer = peer;
    let answer = blocking(move || {
        let answer = peer.answer();
        drop(peer);
        answer
    })
    .await;
    assert_eq!(answer, "held");
}
