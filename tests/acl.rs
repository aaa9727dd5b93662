//! ACLs against a real server: digest ids as the server computes them, the world, auth,
//! digest and ip schemes, `NoAuth` for the unauthorised, and credentials added at runtime
//! surviving a reconnect (client) and a rebuilt session (warden).
#![cfg(feature = "testing")]

mod common;

use common::*;
use zkwarden::acl::{digest_credentials, digest_id};
use zkwarden::testing::FaultProxy;
use zkwarden::warden::ConnectionState;
use zkwarden::{Acl, Client, CreateMode, CreateOptions, Error, Id, Perms, SessionState, Warden};

const BOB_PASSWORD: &str = "b0b-digest-pw";

fn persistent_with(acl: Vec<Acl>) -> CreateOptions {
    CreateOptions::new(CreateMode::Persistent).acl(acl)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_acl_refuses_until_the_credentials_are_added() {
    let server = start_server().await;
    let owner = connect(&server.connect_string()).await;
    let path = unique_path("digest");
    owner
        .create(
            &path,
            b"secret data",
            persistent_with(vec![Acl::digest(Perms::ALL, "bob", BOB_PASSWORD)]),
        )
        .await
        .unwrap();
    // Reading the ACL needs READ (or ADMIN) too.
    assert_eq!(owner.get_acl(&path).await.unwrap_err(), Error::NoAuth);
    assert_eq!(owner.get_data(&path).await.unwrap_err(), Error::NoAuth);
    assert_eq!(
        owner.set_data(&path, b"x", None).await.unwrap_err(),
        Error::NoAuth
    );

    // Wrong password: the server accepts the credentials (digest auth cannot fail), but they
    // do not match.
    let guesser = connect(&server.connect_string()).await;
    guesser
        .add_auth("digest", &digest_credentials("bob", "guess"))
        .await
        .unwrap();
    assert_eq!(guesser.get_data(&path).await.unwrap_err(), Error::NoAuth);

    owner
        .add_auth("digest", &digest_credentials("bob", BOB_PASSWORD))
        .await
        .unwrap();
    assert_eq!(&owner.get_data(&path).await.unwrap().0[..], b"secret data");
    // The server keeps the id as given, so access above means the id was computed as the
    // server computes it from `add_auth` credentials.
    let (acl, _) = owner.get_acl(&path).await.unwrap();
    assert_eq!(
        acl,
        vec![Acl::new(
            Perms::ALL,
            Id::new("digest", digest_id("bob", BOB_PASSWORD))
        )]
    );
    owner.set_data(&path, b"changed", None).await.unwrap();
    owner.delete(&path, None).await.unwrap();
    for c in [owner, guesser] {
        c.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn world_ip_and_auth_schemes() {
    let server = start_server().await;
    let client = connect(&server.connect_string()).await;

    // world: read-only for everyone.
    let read_only = unique_path("world-read");
    client
        .create(
            &read_only,
            b"r",
            persistent_with(vec![Acl::anyone(Perms::READ)]),
        )
        .await
        .unwrap();
    assert_eq!(&client.get_data(&read_only).await.unwrap().0[..], b"r");
    assert_eq!(
        client.set_data(&read_only, b"w", None).await.unwrap_err(),
        Error::NoAuth
    );
    assert_eq!(
        client
            .create(&format!("{read_only}/child"), b"", CreateMode::Persistent)
            .await
            .unwrap_err(),
        Error::NoAuth
    );

    // ip: the loopback client matches 127.0.0.1 and 127.0.0.0/8, not another network.
    for (range, allowed) in [
        ("127.0.0.1", true),
        ("127.0.0.0/8", true),
        ("10.0.0.0/8", false),
    ] {
        let path = unique_path("ip");
        client
            .create(
                &path,
                b"ip",
                persistent_with(vec![Acl::ip(Perms::ALL, range)]),
            )
            .await
            .unwrap();
        let read = client.get_data(&path).await;
        if allowed {
            assert_eq!(&read.unwrap().0[..], b"ip", "{range}");
        } else {
            assert_eq!(read.unwrap_err(), Error::NoAuth, "{range}");
        }
    }

    // auth: needs an authenticated identity on the creating session, then means "that one".
    let creator_only = unique_path("auth");
    assert_eq!(
        client
            .create(
                &creator_only,
                b"",
                persistent_with(vec![Acl::creator(Perms::ALL)])
            )
            .await
            .unwrap_err(),
        Error::InvalidAcl
    );
    client
        .add_auth("digest", &digest_credentials("bob", BOB_PASSWORD))
        .await
        .unwrap();
    client
        .create(
            &creator_only,
            b"c",
            persistent_with(vec![Acl::creator(Perms::ALL)]),
        )
        .await
        .unwrap();
    let (acl, _) = client.get_acl(&creator_only).await.unwrap();
    assert_eq!(acl, vec![Acl::digest(Perms::ALL, "bob", BOB_PASSWORD)]);
    let other = connect(&server.connect_string()).await;
    assert_eq!(
        other.get_data(&creator_only).await.unwrap_err(),
        Error::NoAuth
    );
    other
        .add_auth("digest", &digest_credentials("bob", BOB_PASSWORD))
        .await
        .unwrap();
    assert_eq!(&other.get_data(&creator_only).await.unwrap().0[..], b"c");

    // setACL needs ADMIN: without it, NoAuth; with it, the ACL changes.
    let no_admin = unique_path("no-admin");
    client
        .create(
            &no_admin,
            b"",
            persistent_with(vec![Acl::anyone(Perms::ALL & !Perms::ADMIN)]),
        )
        .await
        .unwrap();
    assert_eq!(
        client
            .set_acl(&no_admin, Acl::OPEN_UNSAFE, None)
            .await
            .unwrap_err(),
        Error::NoAuth
    );
    for c in [client, other] {
        c.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_auth_survives_a_reconnect() {
    let server = start_server().await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let client = Client::builder(proxy.connect_string())
        .session_timeout(SESSION_TIMEOUT)
        .connect()
        .await
        .unwrap();
    let session = client.session_id();
    client
        .add_auth("digest", &digest_credentials("bob", BOB_PASSWORD))
        .await
        .unwrap();
    let path = unique_path("runtime-auth");
    client
        .create(
            &path,
            b"bob's",
            persistent_with(vec![Acl::digest(Perms::ALL, "bob", BOB_PASSWORD)]),
        )
        .await
        .unwrap();

    let mut states = client.state();
    proxy.reset_all();
    let status = within(
        "reconnect after the proxy reset",
        states.wait_for(|s| s.connections >= 2 && s.state == SessionState::Connected),
    )
    .await
    .map(|s| *s)
    .unwrap();
    assert_eq!(status.session_id, session);
    // The new connection knows nothing the client does not present again.
    assert_eq!(&client.get_data(&path).await.unwrap().0[..], b"bob's");
    let digest_users: Vec<String> = client
        .who_am_i()
        .await
        .unwrap()
        .into_iter()
        .filter(|i| i.auth_scheme == "digest")
        .map(|i| i.user)
        .collect();
    assert_eq!(digest_users, ["bob"]);
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warden_runtime_auth_survives_reconnects_and_rebuilt_sessions() {
    let server = start_server().await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let warden = Warden::builder(proxy.connect_string())
        .session_timeout(SESSION_TIMEOUT)
        .connection_timeout(PATIENCE)
        .start()
        .await
        .unwrap();
    warden
        .add_auth("digest", &digest_credentials("bob", BOB_PASSWORD))
        .await
        .unwrap();
    let path = unique_path("warden-auth");
    warden
        .create(&path, b"w")
        .acl(vec![Acl::digest(Perms::ALL, "bob", BOB_PASSWORD)])
        .await
        .unwrap();
    let mut events = warden.events();

    // A reconnect within the session.
    proxy.reset_all();
    loop {
        let event = within("the warden reconnecting", events.next())
            .await
            .expect("event stream open");
        if event.state == ConnectionState::Reconnected {
            assert_eq!(event.generation, 1, "same session");
            break;
        }
    }
    assert_eq!(&warden.get_data(&path).await.unwrap().0[..], b"w");

    // A new session.
    let first = warden.client().expect("a connected session");
    expire_and_await_rebuild(&warden, &mut events).await;
    let second = warden.client().expect("the rebuilt session");
    assert_ne!(second.session_id(), first.session_id());
    assert_eq!(&warden.get_data(&path).await.unwrap().0[..], b"w");
    warden.set_data(&path, b"w2", None).await.unwrap();
    warden.close().await.unwrap();
}
