//! Cargo feature `metrics`: after a real fault (the session expired on the server) the
//! counters a Prometheus scrape shows have moved.

mod common;

use common::{SESSION_TIMEOUT, expire_and_await_rebuild, start_server, unique_path};
use metrics_exporter_prometheus::PrometheusBuilder;
use zkwarden::{Error, Warden};

/// The value of the sample `name{labels}` (labels as rendered, in order) in a scrape.
fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

#[tokio::test]
async fn a_scrape_after_an_expiry_shows_operations_states_and_the_rebuild() {
    // The recorder is process-wide; this is the only test in this binary.
    let prometheus = PrometheusBuilder::new()
        .install_recorder()
        .expect("install the recorder");
    let server = start_server().await;
    let warden = Warden::builder(server.connect_string())
        .session_timeout(SESSION_TIMEOUT)
        .start()
        .await
        .unwrap();
    let path = unique_path("metrics");
    warden.create(&path, b"x").await.unwrap();
    assert_eq!(
        warden
            .get_data(&format!("{path}/missing"))
            .await
            .unwrap_err(),
        Error::NoNode
    );

    let mut events = warden.events();
    expire_and_await_rebuild(&warden, &mut events).await;
    warden.get_data(&path).await.unwrap();

    let scrape = prometheus.render();
    let has = |series: &str| sample(&scrape, series).unwrap_or(0.0);
    assert_eq!(has("zkwarden_sessions_rebuilt"), 1.0, "{scrape}");
    assert_eq!(
        has(r#"zkwarden_connection_transitions{state="lost"}"#),
        1.0,
        "{scrape}"
    );
    assert!(
        has(r#"zkwarden_connection_transitions{state="suspended"}"#) >= 1.0,
        "{scrape}"
    );
    assert_eq!(
        has(r#"zkwarden_operations{db_operation_name="get_data",outcome="NoNode"}"#),
        1.0,
        "{scrape}"
    );
    assert!(
        has(r#"zkwarden_operations{db_operation_name="get_data",outcome="ok"}"#) >= 1.0,
        "{scrape}"
    );
    assert!(
        has(
            r#"db_client_operation_duration_count{db_system_name="zookeeper",db_operation_name="get_data"}"#
        ) >= 1.0,
        "{scrape}"
    );
    assert!(has("zkwarden_connection_suspended_time") > 0.0, "{scrape}");
    assert_eq!(has("zkwarden_operations_in_flight"), 0.0, "{scrape}");
    warden.close().await.unwrap();
}
