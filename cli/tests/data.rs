//! Data commands against a real server: round trips, JSON, dump/restore, watches, exit codes.

mod common;

use common::{Running, code, json, ok, run, unique};

#[test]
fn create_set_get_ls_stat_tree_rm_round_trip() {
    let root = unique("data");
    let created = json(&["create", "-p", &format!("{root}/a/b"), "hello"]);
    assert_eq!(created["created"], format!("{root}/a/b"));
    ok(&["create", &format!("{root}/a/c")]);

    let got = json(&["get", &format!("{root}/a/b")]);
    assert_eq!(got["data"], "hello");
    assert_eq!(got["encoding"], "utf8");
    assert_eq!(got["stat"]["version"], 0);
    assert_eq!(ok(&["get", &format!("{root}/a/b")]), "hello\n");

    // Compare-and-set: the right version wins, a stale one is refused with exit 1.
    let set = json(&["set", &format!("{root}/a/b"), "again", "--version", "0"]);
    assert_eq!(set["stat"]["version"], 1);
    let stale = run(&["set", &format!("{root}/a/b"), "lost", "--version", "0"]);
    assert_eq!(code(&stale), 1);
    assert!(
        String::from_utf8_lossy(&stale.stderr).contains("BadVersion")
            || String::from_utf8_lossy(&stale.stderr).contains("version")
    );

    let listed = json(&["ls", &format!("{root}/a")]);
    assert_eq!(listed["children"], serde_json::json!(["b", "c"]));
    let stat = json(&["stat", &format!("{root}/a")]);
    assert_eq!(stat["stat"]["numChildren"], 2);

    let tree = json(&["tree", &root]);
    assert_eq!(tree["children"][0]["path"], format!("{root}/a"));
    assert_eq!(
        tree["children"][0]["children"][1]["path"],
        format!("{root}/a/c")
    );
    let text = ok(&["tree", &root]);
    assert!(text.contains("    b (5 bytes)"), "{text}");

    let seq = json(&[
        "create",
        "--mode",
        "persistent-sequential",
        &format!("{root}/s-"),
    ]);
    assert!(
        seq["created"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{root}/s-00"))
    );
    let ttl = json(&[
        "create",
        "--mode",
        "ttl",
        "--ttl",
        "1h",
        &format!("{root}/t"),
    ]);
    assert_eq!(ttl["created"], format!("{root}/t"));

    ok(&["rm", "-r", &root]);
    assert_eq!(code(&run(&["stat", &root])), 1);
}

#[test]
fn binary_data_is_base64_and_dump_restore_round_trips() {
    let root = unique("dump");
    ok(&["create", "-p", &format!("{root}/cfg"), "color=blue"]);
    // 0xff 0x00 0x9f: not UTF-8.
    ok(&["create", "--base64", &format!("{root}/blob"), "/wCf"]);
    ok(&["create", "-p", &format!("{root}/deep/er/node"), "x"]);
    let blob = json(&["get", &format!("{root}/blob")]);
    assert_eq!(blob["encoding"], "base64");
    assert_eq!(blob["data"], "/wCf");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dump.json");
    let file = file.to_str().unwrap();
    let summary = json(&["dump", &root, "-o", file]);
    assert_eq!(summary["nodes"], 6);
    let document: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    assert_eq!(document["format"], "zkwarden-dump");
    assert_eq!(document["nodes"][0]["path"], "");
    let blob_node = document["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["path"] == "/blob")
        .unwrap();
    assert_eq!(blob_node["encoding"], "base64");

    // Into a new place: the same tree, the same bytes.
    let copy = unique("restored");
    let restored = json(&["restore", file, "--to", &copy]);
    assert_eq!(restored["created"], 6);
    assert_eq!(json(&["get", &format!("{copy}/blob")])["data"], "/wCf");
    assert_eq!(json(&["get", &format!("{copy}/deep/er/node")])["data"], "x");
    assert_eq!(json(&["get", &format!("{copy}/cfg")])["data"], "color=blue");

    // Again: the nodes exist, so it fails (exit 1) unless asked to overwrite.
    ok(&["set", &format!("{copy}/cfg"), "color=red"]);
    assert_eq!(code(&run(&["restore", file, "--to", &copy])), 1);
    let again = json(&["restore", file, "--to", &copy, "--overwrite"]);
    assert_eq!(again["updated"], 6);
    assert_eq!(json(&["get", &format!("{copy}/cfg")])["data"], "color=blue");

    // Not a dump: a usage error.
    std::fs::write(dir.path().join("bad.json"), "{\"nodes\": 3}").unwrap();
    let bad = run(&["restore", dir.path().join("bad.json").to_str().unwrap()]);
    assert_eq!(code(&bad), 2);
}

#[test]
fn exit_codes_mean_what_help_says() {
    let missing = run(&["--json", "get", &unique("missing")]);
    assert_eq!(code(&missing), 1);
    let error: serde_json::Value = serde_json::from_slice(&missing.stderr).unwrap();
    assert_eq!(error["error"], "NoNode");
    assert_eq!(error["exit_code"], 1);

    // Usage: a bad path, an unknown flag, no servers at all.
    assert_eq!(code(&run(&["get", "no-slash"])), 2);
    assert_eq!(code(&run(&["get", "/x", "--frobnicate"])), 2);
    let no_servers = std::process::Command::new(env!("CARGO_BIN_EXE_zkwarden"))
        .env_remove("ZK_CONNECT")
        .args(["ls", "/"])
        .output()
        .unwrap();
    assert_eq!(code(&no_servers), 2);

    // Nothing listens on a port we just bound and released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let unreachable = std::process::Command::new(env!("CARGO_BIN_EXE_zkwarden"))
        .env("ZK_CONNECT", format!("127.0.0.1:{port}"))
        .args(["--timeout", "1s", "ls", "/"])
        .output()
        .unwrap();
    assert_eq!(
        code(&unreachable),
        3,
        "{}",
        String::from_utf8_lossy(&unreachable.stderr)
    );

    // The four-letter word goes to one server, outside any session: exit 3 too.
    let silent = run(&["4lw", "ruok", "--server", &format!("127.0.0.1:{port}")]);
    assert_eq!(code(&silent), 3);

    // Bad input on our side: base64 that is not, a COMMAND that does not exist (the lock is
    // released again), a TTL without a TTL mode.
    assert_eq!(code(&run(&["set", "/x", "--base64", "!!"])), 2);
    let lock = unique("no-such-command");
    let missing_command = run(&["lock", &lock, "--", "/nonexistent/command"]);
    assert_eq!(code(&missing_command), 2);
    assert_eq!(json(&["ls", &lock])["children"], serde_json::json!([]));
    assert_eq!(code(&run(&["create", &unique("ttl"), "--ttl", "1s"])), 2);

    let help = ok(&["--help"]);
    assert!(help.contains("3  connection or session failure"), "{help}");
}

#[test]
fn watch_prints_one_shot_and_recursive_events() {
    let root = unique("watch");
    ok(&["create", &root, "v0"]);

    let mut once = Running::start(&["--json", "watch", &root]);
    once.stderr_until("watching");
    ok(&["set", &root, "v1"]);
    let event: serde_json::Value = serde_json::from_str(&once.stdout_line()).unwrap();
    assert_eq!(event["type"], "NodeDataChanged");
    assert_eq!(event["path"], root);
    assert_eq!(once.wait(), 0);

    let mut below = Running::start(&["--json", "watch", "-r", &root, "--count", "2"]);
    below.stderr_until("watching");
    ok(&["create", &format!("{root}/child")]);
    ok(&["set", &format!("{root}/child"), "x"]);
    let first: serde_json::Value = serde_json::from_str(&below.stdout_line()).unwrap();
    let second: serde_json::Value = serde_json::from_str(&below.stdout_line()).unwrap();
    assert_eq!(first["type"], "NodeCreated");
    assert_eq!(second["type"], "NodeDataChanged");
    assert_eq!(second["path"], format!("{root}/child"));
    assert_eq!(below.wait(), 0);
}
