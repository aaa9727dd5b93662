//! `4lw` against a real server, `config check` on files, and connecting with `--config`.

mod common;

use common::{code, json, ok, server, unique};

#[test]
fn four_letter_words_parse_to_json() {
    let mntr = json(&["4lw", "mntr"]);
    assert!(
        mntr["zk_version"].as_str().unwrap().starts_with("3."),
        "{mntr}"
    );
    assert!(mntr["zk_znode_count"].as_u64().unwrap() >= 1, "{mntr}");
    assert_eq!(mntr["zk_server_state"], "standalone");
    assert_eq!(json(&["4lw", "ruok"])["ok"], true);
    let srvr = json(&["4lw", "srvr"]);
    assert_eq!(srvr["mode"], "standalone");
    assert!(srvr["node_count"].as_u64().unwrap() >= 1, "{srvr}");
    let conf = json(&["4lw", "conf"]);
    assert_eq!(conf["clientPort"], server().port());
    let text = ok(&["4lw", "srvr"]);
    assert!(text.contains("Mode: standalone"), "{text}");
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn config_check_prints_the_schedule_worst_case_and_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(
        &dir,
        "good.toml",
        "connect = \"zk1:2181\"\nsession_timeout = \"10s\"\nconnection_timeout = \"15s\"\n\
         retry = { kind = \"bounded_exponential\", base = \"100ms\", max_sleep = \"1s\", max_retries = 4 }\n",
    );
    let report = json(&["config", "check", &good]);
    let delays: Vec<u64> = report["schedule"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["delay_max_ms"].as_u64().unwrap())
        .collect();
    assert_eq!(delays, [100, 200, 400, 800]);
    assert_eq!(report["schedule"][3]["cumulative_ms"], 1500);
    // 5 attempts x (15 s connection timeout + 6.666 s read timeout) + 1.5 s of pauses.
    assert_eq!(report["attempt_worst_ms"], 21_666);
    assert_eq!(report["worst_case_ms"], 109_833); // 5 x 21.666.. s, rounded once
    assert_eq!(report["warnings"], serde_json::json!([]));
    let text = ok(&["config", "check", &good]);
    assert!(text.contains("retry  4: after 800ms"), "{text}");
    assert!(text.contains("total 1s 500ms"), "{text}");

    // A retry budget past the session timeout, and a connection timeout shorter than one
    // round of three hosts (10 s / 3 each).
    let risky = write(
        &dir,
        "risky.json",
        r#"{"connect": "a:1,b:1,c:1", "session_timeout": "4s", "connection_timeout": "2s",
            "retry": {"kind": "n_times", "n": 5, "sleep": "1s"}}"#,
    );
    let report = json(&["config", "check", &risky]);
    let warnings = report["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0]
            .as_str()
            .unwrap()
            .contains("longer than the session timeout")
    );
    assert!(
        warnings[1]
            .as_str()
            .unwrap()
            .contains("shorter than one connect round")
    );

    // Invalid: unknown field, bad value, wrong extension. All usage errors.
    let typo = write(
        &dir,
        "typo.toml",
        "connect = \"a:1\"\nsession_timout = \"1s\"\n",
    );
    let zero = write(
        &dir,
        "zero.toml",
        "connect = \"a:1\"\nsession_timeout = \"0s\"\n",
    );
    let yaml = write(&dir, "c.yaml", "connect: a\n");
    for file in [typo, zero, yaml] {
        let output = common::run(&["config", "check", &file]);
        assert_eq!(code(&output), 2, "{file}");
    }
}

#[test]
fn connects_with_a_config_file_and_its_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let namespace = unique("ns");
    let file = write(
        &dir,
        "warden.json",
        &format!(
            r#"{{"connect": "{}", "namespace": "{namespace}"}}"#,
            server().connect_string()
        ),
    );
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_zkwarden"))
        .env_remove("ZK_CONNECT")
        .args(["--config", &file, "create", "/inside", "x"])
        .output()
        .unwrap();
    assert_eq!(
        code(&output),
        0,
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(json(&["get", &format!("{namespace}/inside")])["data"], "x");
}

/// With cargo feature `tls`: a config file's `tls` section reaches the server's secure port,
/// for data commands and for `chaos expire` alike.
#[cfg(feature = "tls")]
#[test]
fn a_config_with_tls_reaches_the_secure_port() {
    use zkwarden::testing::{TlsClientAuth, TlsMaterial, ZkServer};

    let material = TlsMaterial::generate().unwrap();
    let server = ZkServer::builder()
        .tls(&material, TlsClientAuth::None)
        .start()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "tls.toml",
        &format!(
            "connect = \"{}\"\ntls = {{ ca_file = \"{}\" }}\n",
            server.secure_connect_string().unwrap(),
            material.ca_file().display()
        ),
    );
    let zk = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_zkwarden"))
            .env_remove("ZK_CONNECT")
            .args(["--config", &file])
            .args(args)
            .output()
            .unwrap()
    };
    let created = zk(&["create", "/over-tls", "x"]);
    assert_eq!(
        code(&created),
        0,
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let mut holder = common::Running::start_command(
        std::process::Command::new(env!("CARGO_BIN_EXE_zkwarden"))
            .env_remove("ZK_CONNECT")
            .args(["--config", &file, "lock", "/tls-lock", "--", "sh", "-c"])
            .arg("echo ready; while :; do sleep 0.1; done"),
    );
    assert_eq!(holder.stdout_line(), "ready");
    let expired = zk(&["chaos", "expire", "--lock-holder", "/tls-lock"]);
    assert_eq!(
        code(&expired),
        0,
        "{}",
        String::from_utf8_lossy(&expired.stderr)
    );
    assert_eq!(holder.wait(), 4);
}
