//! Runs the body of `examples/service.rs` against a real server, with the warden read from a
//! config file and its session expired on the server in the middle: the counter must equal
//! the number of fenced writes the service saw accepted, across both terms.

mod common;

#[allow(dead_code)] // the example's `main`, which runs until killed
#[path = "../examples/service.rs"]
mod service;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

use common::{start_server, unique_path, warden, within};
use zkwarden::{CreateMode, Warden, WardenConfig};

/// Waits until the service has seen at least `at_least` writes accepted, following the
/// counter node's changes (the service keeps writing, so each wait ends with a change).
async fn await_accepted(observer: &Warden, accepted: &AtomicU64, at_least: u64) {
    let mut changes = observer.watch_data(service::COUNTER);
    within(&format!("{at_least} accepted writes"), async {
        while accepted.load(SeqCst) < at_least {
            changes.next().await.expect("the observer is open");
        }
    })
    .await;
}

#[tokio::test]
async fn the_counter_equals_the_accepted_fenced_writes_across_a_session_expiry() {
    let server = start_server().await;
    let observer = warden(&server.connect_string()).await;
    observer
        .create_node("/pause_ms", b"5", CreateMode::Persistent)
        .await
        .expect("settings");
    let file = std::env::temp_dir().join(format!(
        "{}.toml",
        unique_path("service").trim_start_matches('/')
    ));
    std::fs::write(
        &file,
        format!("connect = \"{}\"\n", server.connect_string()),
    )
    .expect("config file");
    let config = WardenConfig::from_file(&file).expect("config from the file");
    std::fs::remove_file(&file).expect("remove the config file");
    let w = Warden::start(config).await.expect("warden");

    let accepted = Arc::new(AtomicU64::new(0));
    let running = service::serve(w.clone(), accepted.clone())
        .await
        .expect("serve");
    await_accepted(&observer, &accepted, 5).await;

    zkwarden::testing::expire_warden(&w).await.expect("expire");
    let before = accepted.load(SeqCst);
    await_accepted(&observer, &accepted, before + 5).await;
    assert!(running.terms() >= 2, "the expiry ended the first term");

    running.close().await.expect("close");
    let (data, _) = observer.get_data(service::COUNTER).await.expect("counter");
    let text = String::from_utf8(data.to_vec()).expect("text");
    let count: u64 = text
        .split(' ')
        .next()
        .expect("count")
        .parse()
        .expect("a number");
    assert_eq!(count, accepted.load(SeqCst), "counter {text:?}");
    w.close().await.expect("close the warden");
}

/// The README's "A whole service" shows the example's code (below its module docs) whole.
#[test]
fn the_readme_shows_the_example_as_it_is() {
    let example = include_str!("../examples/service.rs");
    let code = &example[example.find("use std::").expect("the example's imports")..];
    let readme = include_str!("../../README.md");
    let section = &readme[readme
        .find("## A whole service")
        .expect("the README section")..];
    let start = section.find("```text\n").expect("the code block") + "```text\n".len();
    let end = start + section[start..].find("```").expect("the block's end");
    assert_eq!(
        &section[start..end],
        code,
        "README.md and recipes/examples/service.rs differ"
    );
}
