//! `lock` and `leader` against a real server: COMMAND runs with the fencing token, its
//! status comes back, and it is stopped when the lock is lost (the holder's session expired
//! on the server by `chaos expire`).

mod common;

use std::io::Write;
use std::process::Stdio;

use common::{Running, code, json, ok, unique, zk};

#[test]
fn lock_runs_the_command_with_the_token_and_returns_its_status() {
    let path = unique("lock");
    let script = "echo \"$ZKWARDEN_FENCE $ZKWARDEN_NODE\"; exit 7";
    let first = zk()
        .args(["lock", &path, "--", "sh", "-c", script])
        .output()
        .unwrap();
    assert_eq!(
        code(&first),
        7,
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let stdout = String::from_utf8(first.stdout).unwrap();
    let (token, node) = stdout.trim().split_once(' ').unwrap();
    let token: i64 = token.parse().unwrap();
    assert!(node.starts_with(&format!("{path}/_c_")), "{node}");

    // Released on the way out: nobody is queued, and the next holder gets a higher token.
    assert_eq!(json(&["ls", &path])["children"], serde_json::json!([]));
    let second = zk()
        .args([
            "lock",
            &path,
            "--fence-env",
            "TOKEN",
            "--",
            "sh",
            "-c",
            "echo $TOKEN",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&second), 0);
    let next: i64 = String::from_utf8(second.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(next > token, "{next} after {token}");
}

/// A COMMAND that says when it runs, with its session, and reports SIGTERM.
const GRACEFUL: &str = "trap 'echo got-term; exit 0' TERM; echo \"ready $ZKWARDEN_SESSION\"; \
                        while :; do sleep 0.1; done";

#[test]
fn lock_stops_the_command_when_the_holders_session_is_expired() {
    let path = unique("expire-lock");
    let mut holder = Running::start(&["lock", &path, "--grace", "20s", "--", "sh", "-c", GRACEFUL]);
    let ready = holder.stdout_line();
    let session = ready.strip_prefix("ready ").unwrap().to_owned();

    let expired = json(&["chaos", "expire", "--lock-holder", &path]);
    assert_eq!(expired["expired"], session);

    assert_eq!(holder.stdout_line(), "got-term");
    assert_eq!(holder.wait(), 4);
    let stderr = holder.rest_of_stderr();
    assert!(stderr.contains("stopping COMMAND"), "{stderr}");
}

#[test]
fn lock_kills_a_command_that_ignores_sigterm_after_the_grace_period() {
    let path = unique("stubborn");
    let stubborn = "trap '' TERM; echo \"ready $$\"; while :; do sleep 0.1; done";
    let mut holder = Running::start(&[
        "lock", &path, "--grace", "300ms", "--", "sh", "-c", stubborn,
    ]);
    let pid = holder
        .stdout_line()
        .strip_prefix("ready ")
        .unwrap()
        .to_owned();
    ok(&["chaos", "expire", "--lock-holder", &path]);
    assert_eq!(holder.wait(), 4);
    let stderr = holder.rest_of_stderr();
    assert!(stderr.contains("SIGKILL"), "{stderr}");
    // The shell is gone (a zombie at most until reaped, which zkwarden did before exiting).
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
}

#[test]
fn leader_runs_one_command_at_a_time_in_election_order() {
    let path = unique("leader");
    // The first leader's COMMAND runs until we write a line to it.
    let script = "echo \"lead $ZKWARDEN_FENCE\"; read line; exit 0";
    let mut first = Running::start_command(
        zk().args(["leader", &path, "--id", "one", "--", "sh", "-c", script])
            .stdin(Stdio::piped()),
    );
    let first_token: i64 = first
        .stdout_line()
        .strip_prefix("lead ")
        .unwrap()
        .parse()
        .unwrap();

    // Someone else cannot lead meanwhile: within --wait it gives up with exit 5.
    let impatient = zk()
        .args(["leader", &path, "--wait", "500ms", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(
        code(&impatient),
        5,
        "{}",
        String::from_utf8_lossy(&impatient.stderr)
    );

    let mut second = Running::start(&[
        "leader",
        &path,
        "--id",
        "two",
        "--",
        "sh",
        "-c",
        "echo \"lead $ZKWARDEN_FENCE\"; exit 3",
    ]);
    // Ending the first term lets the second participant lead; its COMMAND's status is ours.
    writeln!(first.child.stdin.as_mut().unwrap(), "done").unwrap();
    assert_eq!(first.wait(), 0);
    let second_token: i64 = second
        .stdout_line()
        .strip_prefix("lead ")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        second_token > first_token,
        "{second_token} after {first_token}"
    );
    assert_eq!(second.wait(), 3);
}

#[test]
fn leader_stops_the_command_when_its_node_owner_is_expired() {
    let path = unique("expire-leader");
    let script = "trap 'echo got-term; exit 0' TERM; echo \"ready $ZKWARDEN_NODE\"; \
                  while :; do sleep 0.1; done";
    let mut leader = Running::start(&["leader", &path, "--", "sh", "-c", script]);
    let node = leader
        .stdout_line()
        .strip_prefix("ready ")
        .unwrap()
        .to_owned();
    assert!(node.starts_with(&format!("{path}/")), "{node}");

    let expired = json(&["chaos", "expire", "--owner-of", &node]);
    assert_eq!(expired["node"], node);
    assert_eq!(leader.stdout_line(), "got-term");
    assert_eq!(leader.wait(), 4);
}
