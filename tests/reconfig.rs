//! Dynamic reconfiguration on real servers: members removed and added back by `reconfig`, the
//! configuration watch, and the typed refusals.
#![cfg(feature = "testing")]

mod common;

use std::time::Duration;

use common::*;
use zkwarden::testing::ZkEnsemble;
use zkwarden::warden::{RetryConfig, WardenBuilder};
use zkwarden::{Client, Error, EventType, Reconfig, Warden};

/// The superuser's password on the reconfigurable ensemble (reconfig needs write permission
/// on `/zookeeper/config`).
const SUPER_PASSWORD: &str = "reconfig-test";

/// The `server.N=...` lines of a configuration, sorted.
fn members_of(config: &[u8]) -> Vec<String> {
    let text = std::str::from_utf8(config).expect("a config is text");
    let mut members: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("server."))
        .map(str::to_owned)
        .collect();
    members.sort();
    members
}

/// The server ids (`N` of `server.N=`) a configuration lists.
fn ids_of(config: &[u8]) -> Vec<u32> {
    members_of(config)
        .iter()
        .filter_map(|m| m.strip_prefix("server.")?.split('=').next()?.parse().ok())
        .collect()
}

/// A warden on one member that keeps retrying what may be retried: members restart their
/// client service for a moment while the quorum settles on its first dynamic config.
fn patient_warden(ensemble: &ZkEnsemble, member: usize) -> WardenBuilder {
    Warden::builder(ensemble.member_connect_string(member))
        .session_timeout(SESSION_TIMEOUT)
        .connection_timeout(PATIENCE)
        .retry(RetryConfig::Forever {
            sleep: Duration::from_millis(50),
        })
}

#[tokio::test]
async fn a_member_leaves_and_rejoins_by_reconfig_and_the_config_watch_sees_both() {
    init_tracing();
    let ensemble = blocking(|| {
        ZkEnsemble::builder()
            .reconfig_enabled(true)
            .superuser(SUPER_PASSWORD)
            .start(3)
            .expect("a reconfigurable three-server ensemble")
    })
    .await;
    // One member leaves and comes back: a follower, so that no election interrupts the test.
    // The admin and the observer stay on the other two members throughout.
    let (ensemble, gone) = blocking(move || {
        let gone = (0..3)
            .rev()
            .find(|&i| ensemble.mode(i).as_deref() != Some("leader"))
            .expect("two of three members follow");
        (ensemble, gone)
    })
    .await;
    let gone_id = gone as u64 + 1;
    let (a, b) = match gone {
        0 => (1, 2),
        1 => (0, 2),
        _ => (0, 1),
    };
    let admin = patient_warden(&ensemble, a)
        .auth("digest", format!("super:{SUPER_PASSWORD}"))
        .start()
        .await
        .unwrap();
    let (initial, _) = admin.get_config().await.unwrap();
    assert_eq!(ids_of(&initial), [1, 2, 3]);
    let initial_version = Reconfig::version_of(&initial).expect("a version line");

    // Someone else watches the configuration, through another member.
    let observer = patient_warden(&ensemble, b).start().await.unwrap();
    let (_, _, watch) = observer.get_config_and_watch().await.unwrap();
    // Without the superuser's credentials, the change is not allowed.
    let remove = Reconfig::incremental(Vec::<String>::new(), [gone_id]);
    assert_eq!(observer.reconfig(&remove).await.unwrap_err(), Error::NoAuth);

    // 3 -> 2: an incremental change removing one member.
    let (two, _) = admin
        .reconfig(&remove.from_config(initial_version))
        .await
        .unwrap();
    let mut remaining = vec![1, 2, 3];
    remaining.retain(|&id| id != gone_id as u32);
    assert_eq!(ids_of(&two), remaining);
    let event = within("the config watch fires", watch).await.unwrap();
    assert_eq!(event.event_type, EventType::NodeDataChanged);
    assert_eq!(event.path, "/zookeeper/config");
    observer.sync("/").await.unwrap();
    let (seen, _) = observer.get_config().await.unwrap();
    assert_eq!(
        members_of(&seen),
        members_of(&two),
        "everyone reads the new config"
    );

    // A change based on the old version is refused, and changes nothing.
    let stale =
        Reconfig::incremental([ensemble.member_spec(gone)], []).from_config(initial_version);
    assert_eq!(admin.reconfig(&stale).await.unwrap_err(), Error::BadVersion);
    assert_eq!(ids_of(&admin.get_config().await.unwrap().0), remaining);
    // Members that do not run cannot make up a quorum of the new configuration.
    let ghosts = Reconfig::replace([
        ensemble.member_spec(a).to_owned(),
        "server.8=127.0.0.1:1:2:participant;127.0.0.1:3".to_owned(),
        "server.9=127.0.0.1:4:5:participant;127.0.0.1:6".to_owned(),
    ]);
    assert_eq!(
        admin.reconfig(&ghosts).await.unwrap_err(),
        Error::NewConfigNoQuorum
    );
    assert_eq!(ids_of(&admin.get_config().await.unwrap().0), remaining);

    // 2 -> 3: a non-incremental change naming all three members, from the current version.
    let (_, _, watch) = observer.get_config_and_watch().await.unwrap();
    let version = Reconfig::version_of(&two).expect("a version line");
    let all = Reconfig::replace((0..3).map(|i| ensemble.member_spec(i).to_owned()));
    let (three, _) = admin.reconfig(&all.from_config(version)).await.unwrap();
    assert_eq!(ids_of(&three), [1, 2, 3]);
    assert!(
        members_of(&three).contains(&ensemble.member_spec(gone).to_owned()),
        "the rejoined member is listed with its client address: {:?}",
        members_of(&three)
    );
    within("the config watch fires again", watch).await.unwrap();

    // The rejoined member serves the session of a client that can reach only it.
    let rejoined = Client::builder(ensemble.member_connect_string(gone))
        .session_timeout(SESSION_TIMEOUT)
        .connect_timeout(PATIENCE)
        .connect()
        .await
        .expect("the rejoined member takes sessions");
    rejoined.sync("/").await.unwrap();
    assert_eq!(
        members_of(&rejoined.get_config().await.unwrap().0),
        members_of(&three)
    );
    rejoined.close().await.unwrap();
    observer.close().await.unwrap();
    admin.close().await.unwrap();
}

#[tokio::test]
async fn reconfig_is_refused_with_typed_errors() {
    let server = start_server().await;
    let client = connect(&server.connect_string()).await;
    // Checked before anything else: the server does not allow reconfiguration at all.
    let change = Reconfig::incremental(Vec::<String>::new(), [2]);
    assert_eq!(
        client.reconfig(&change).await.unwrap_err(),
        Error::ReconfigDisabled
    );
    // Bad input never leaves the client.
    let empty = Reconfig::incremental(Vec::<String>::new(), []);
    assert!(matches!(
        client.reconfig(&empty).await,
        Err(Error::InvalidArgument(_))
    ));
    client.close().await.unwrap();
}
