//! Tests of `zkwarden::testing` itself: servers start, restart, die with their owner, and an
//! ensemble elects a new leader when the old one is killed.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use zkwarden::testing::{TestingError, ZkEnsemble, ZkServer};

/// Polls `cond` every 50 ms until it holds or `timeout` passes.
fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn accepts(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

fn mode_line(srvr: &str) -> Option<&str> {
    srvr.lines().find(|l| l.starts_with("Mode:"))
}

#[test]
fn standalone_server_serves_and_is_gone_after_drop() -> Result<(), TestingError> {
    let started = Instant::now();
    let server = ZkServer::start()?;
    eprintln!("standalone server started in {:?}", started.elapsed());

    assert_eq!(
        server.connect_string(),
        format!("127.0.0.1:{}", server.port())
    );
    assert_eq!(server.addr().port(), server.port());
    assert!(server.is_running());
    assert_eq!(server.four_letter("ruok")?, "imok");
    let srvr = server.four_letter("srvr")?;
    assert_eq!(mode_line(&srvr), Some("Mode: standalone"), "{srvr}");
    assert!(
        server
            .four_letter("mntr")?
            .contains("zk_server_state\tstandalone")
    );
    assert_eq!(server.session_ids()?, Vec::<i64>::new());

    let conf = std::fs::read_to_string(server.data_dir().join("zoo.cfg")).map_err(|e| {
        TestingError::Io {
            context: "reading zoo.cfg".into(),
            source: e,
        }
    })?;
    assert!(conf.contains("tickTime=200\n"), "{conf}");
    assert!(server.log_path().starts_with(server.data_dir()));
    assert!(std::fs::metadata(server.log_path()).is_ok_and(|m| m.len() > 0));

    let addr = server.addr();
    let dir = server.data_dir().to_path_buf();
    drop(server);
    assert!(!accepts(addr), "port {addr} still accepts after drop");
    assert!(
        !dir.exists(),
        "data dir {} survived the drop",
        dir.display()
    );
    Ok(())
}

#[test]
fn restart_keeps_port_and_data_dir() -> Result<(), TestingError> {
    let mut server = ZkServer::builder()
        .tick_time(Duration::from_millis(100))
        .max_session_timeout(Duration::from_secs(10))
        .extra_config("maxClientCnxns", "0")
        .start()?;
    let addr = server.addr();
    let dir = server.data_dir().to_path_buf();
    let marker = dir.join("marker");
    std::fs::write(&marker, "still here").map_err(|e| TestingError::Io {
        context: "writing marker".into(),
        source: e,
    })?;
    let conf = std::fs::read_to_string(dir.join("zoo.cfg")).map_err(|e| TestingError::Io {
        context: "reading zoo.cfg".into(),
        source: e,
    })?;
    assert!(conf.contains("tickTime=100\n") && conf.contains("maxSessionTimeout=10000\n"));
    assert!(conf.contains("maxClientCnxns=0\n"), "{conf}");

    server.stop();
    assert!(!server.is_running());
    assert!(!accepts(addr), "port {addr} still accepts after stop");
    assert!(matches!(
        server.four_letter("ruok"),
        Err(TestingError::NotRunning { .. })
    ));
    server.stop(); // stopping twice is harmless

    let started = Instant::now();
    server.restart()?;
    eprintln!("standalone server restarted in {:?}", started.elapsed());
    assert!(server.is_running());
    assert_eq!(server.addr(), addr);
    assert_eq!(server.data_dir(), dir);
    assert!(marker.exists());
    let stat = server.four_letter("stat")?;
    assert_eq!(mode_line(&stat), Some("Mode: standalone"), "{stat}");

    // Restart while running also works.
    server.restart()?;
    assert_eq!(server.four_letter("ruok")?, "imok");
    Ok(())
}

#[test]
fn ensemble_elects_new_leader_and_member_comes_back() -> Result<(), TestingError> {
    let started = Instant::now();
    let mut ensemble = ZkEnsemble::start(3)?;
    eprintln!("3-member ensemble started in {:?}", started.elapsed());

    assert_eq!(ensemble.len(), 3);
    assert_eq!(ensemble.connect_string().split(',').count(), 3);
    assert_eq!(
        ensemble.member_connect_string(1),
        format!("127.0.0.1:{}", ensemble.addr(1).port())
    );
    let modes: Vec<Option<String>> = (0..3).map(|i| ensemble.mode(i)).collect();
    assert_eq!(
        modes
            .iter()
            .filter(|m| m.as_deref() == Some("leader"))
            .count(),
        1,
        "{modes:?}"
    );
    assert_eq!(
        modes
            .iter()
            .filter(|m| m.as_deref() == Some("follower"))
            .count(),
        2,
        "{modes:?}"
    );
    assert!(ensemble.member_of_session(0x1234).is_none());
    assert!(matches!(
        ensemble.kill(7),
        Err(TestingError::NoSuchMember { index: 7, len: 3 })
    ));

    let old_leader = ensemble.leader().ok_or(TestingError::EmptyEnsemble)?;
    ensemble.kill(old_leader)?;
    assert!(!ensemble.is_running(old_leader));
    assert!(!accepts(ensemble.addr(old_leader)));

    let killed = Instant::now();
    let new_leader = {
        let mut found = None;
        wait_until(Duration::from_secs(20), || {
            found = ensemble.leader();
            found.is_some()
        });
        found
    };
    eprintln!("new leader {new_leader:?} after {:?}", killed.elapsed());
    assert!(
        new_leader.is_some_and(|l| l != old_leader),
        "{new_leader:?}"
    );

    let restarted = Instant::now();
    ensemble.restart(old_leader)?;
    eprintln!("member {old_leader} rejoined in {:?}", restarted.elapsed());
    assert!(ensemble.is_running(old_leader));
    assert_eq!(ensemble.mode(old_leader).as_deref(), Some("follower"));
    assert_eq!(ensemble.four_letter(old_leader, "ruok")?, "imok");
    assert_eq!(ensemble.leader(), new_leader);
    Ok(())
}

/// Environment variable telling [`child_holds_a_server`] that it runs as the child of
/// [`server_dies_with_its_owner_process`].
const CHILD_ENV: &str = "ZKWARDEN_HARNESS_CHILD";

/// Not a test of its own: the child process of `server_dies_with_its_owner_process`. It starts
/// a server, prints its port, and waits to be killed.
#[test]
#[ignore = "helper process for server_dies_with_its_owner_process"]
fn child_holds_a_server() -> Result<(), TestingError> {
    if std::env::var_os(CHILD_ENV).is_none() {
        return Ok(());
    }
    let server = ZkServer::start()?;
    println!("PORT={}", server.port());
    std::thread::sleep(Duration::from_secs(120));
    Ok(())
}

#[test]
fn server_dies_with_its_owner_process() -> Result<(), Box<dyn std::error::Error>> {
    let mut child = Command::new(std::env::current_exe()?)
        .args([
            "--exact",
            "child_holds_a_server",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_ENV, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("child has no stdout")?;
    let port: u16 = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.strip_prefix("PORT=").and_then(|p| p.parse().ok()))
        .ok_or("child did not report a port")?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    assert!(accepts(addr), "the child's server is not up");

    child.kill()?; // SIGKILL: no destructor runs in the child
    child.wait()?;
    assert!(
        wait_until(Duration::from_secs(10), || !accepts(addr)),
        "the JVM on port {port} outlived its owner"
    );
    Ok(())
}
