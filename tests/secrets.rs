//! Secrets never show: session passwords and credentials (digest, given at build time or added
//! at runtime, to a client or to a warden; SASL passwords) must not appear in `Debug` or `Display` output of
//! any public value, nor in anything the crate logs at any level, through connects,
//! reconnects, expiries, rebuilt sessions and failed authentication.
//!
//! This file is its own test binary, so it installs a global subscriber that records every
//! event and span at TRACE level into memory; the session tasks spawned on the runtime's
//! worker threads log into it too.
#![cfg(feature = "testing")]

mod common;

use std::borrow::Cow;
use std::fmt::{Debug, Display};

use bytes::Bytes;
use common::capture::captured_log;
use common::*;
use zkwarden::proto::records::{
    AuthPacket, ConnectRequest, ConnectResponse, GetSaslRequest, Password, Secret,
};
use zkwarden::testing::{FaultProxy, ZkServer, expire_session};
use zkwarden::warden::{AuthConfig, WardenBuilder, WardenConfig};
use zkwarden::{
    Acl, Client, CreateMode, CreateOptions, Error, Perms, SaslConfig, SessionId, SessionPassword,
    SessionState, Warden,
};

/// Credentials given to the client builder.
const CLIENT_AUTH: &str = "alice:s3cr3t-digest-pw";
/// Credentials added to the client at runtime.
const CLIENT_RUNTIME_AUTH: &str = "carol:rUnt1me-added-pw";
/// Credentials given to the warden builder.
const WARDEN_AUTH: &str = "bob:w4rden-secret";
/// Credentials added to the warden at runtime.
const WARDEN_RUNTIME_AUTH: &str = "dave:w4rden-runtime-pw";
/// Credentials for a scheme the server does not know (authentication fails).
const REFUSED_AUTH: &str = "n0-such-scheme-pw";

/// The SASL (DIGEST-MD5) password of the server's user `erin`.
const SASL_PASSWORD: &str = "s4sl-digest-md5-pw";
/// A wrong SASL password for `erin` (refused).
const SASL_WRONG_PASSWORD: &str = "wr0ng-sasl-guess";

/// Every rendering of `{:?}`, `{:#?}` (and `{}` where there is one) of the values checked.
#[derive(Default)]
struct Shown(Vec<String>);

impl Shown {
    fn debug(&mut self, value: &impl Debug) {
        self.0.push(format!("{value:?}"));
        self.0.push(format!("{value:#?}"));
    }

    fn both(&mut self, value: &(impl Debug + Display)) {
        self.debug(value);
        self.0.push(value.to_string());
    }
}

fn hex(bytes: &[u8], upper: bool) -> String {
    bytes
        .iter()
        .map(|b| {
            if upper {
                format!("{b:02X}")
            } else {
                format!("{b:02x}")
            }
        })
        .collect()
}

/// Standard base64 (RFC 4648), with and without padding.
fn base64(bytes: &[u8]) -> [String; 2] {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
        for _ in chunk.len()..3 {
            out.push('=');
        }
    }
    let unpadded = out.trim_end_matches('=').to_owned();
    [out, unpadded]
}

/// The ways a secret could be rendered if it leaked. An empty list for an empty secret.
fn renderings(secret: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let [padded, unpadded] = base64(secret);
    let mut forms = vec![
        ("raw bytes", secret.to_vec()),
        ("lowercase hex", hex(secret, false).into_bytes()),
        ("uppercase hex", hex(secret, true).into_bytes()),
        ("base64", padded.into_bytes()),
        ("unpadded base64", unpadded.into_bytes()),
        ("byte list", format!("{secret:?}").into_bytes()),
        ("hex byte list", format!("{secret:x?}").into_bytes()),
        (
            "byte string",
            format!("{:?}", Bytes::copy_from_slice(secret)).into_bytes(),
        ),
    ];
    // A byte list is also printed one element per line by `{:#?}`: its first few elements are
    // enough to recognise it.
    let head = &secret[..secret.len().min(4)];
    let pretty_head: String = head.iter().map(|b| format!("    {b},\n")).collect();
    forms.push(("pretty byte list", pretty_head.into_bytes()));
    forms.retain(|(_, form)| form.len() >= 8);
    forms
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// Asserts that no rendering of any secret occurs in `text`.
fn assert_no_secret(what: &str, text: &[u8], secrets: &[(String, Vec<u8>)]) {
    for (name, secret) in secrets {
        for (form, needle) in renderings(secret) {
            assert!(
                !contains(text, &needle),
                "{what} shows {name} as {form}: {}",
                String::from_utf8_lossy(&needle)
            );
        }
    }
}

/// The part of `user:password` after the colon.
fn password_of(credentials: &str) -> &str {
    credentials.split_once(':').map_or(credentials, |(_, p)| p)
}

async fn digest_users(client: &Client) -> Vec<String> {
    let mut users: Vec<String> = client
        .who_am_i()
        .await
        .unwrap()
        .into_iter()
        .filter(|info| info.auth_scheme == "digest")
        .map(|info| info.user)
        .collect();
    users.sort();
    users
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_debug_display_or_logs() {
    let log = captured_log();
    let server = start_server().await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let mut shown = Shown::default();
    let mut passwords: Vec<(String, SessionPassword)> = Vec::new();

    // ----- a client with credentials from its builder and more added at runtime -----------
    let builder = Client::builder(proxy.connect_string())
        .session_timeout(SESSION_TIMEOUT)
        .auth("digest", CLIENT_AUTH);
    shown.debug(&builder);
    let client = builder.clone().connect().await.unwrap();
    client
        .add_auth("digest", CLIENT_RUNTIME_AUTH.as_bytes())
        .await
        .unwrap();
    let session = client.session_id();
    passwords.push(("client session password".into(), client.session_password()));
    assert_eq!(digest_users(&client).await, ["alice", "carol"]);

    // A node only these identities may touch.
    let guarded = unique_path("guarded");
    let options = CreateOptions::new(CreateMode::Persistent).acl(Acl::CREATOR_ALL);
    client.create(&guarded, b"mine", options).await.unwrap();
    client
        .set_data(&guarded, b"still mine", None)
        .await
        .unwrap();
    let (acl, _) = client.get_acl(&guarded).await.unwrap();
    shown.debug(&acl);
    shown.debug(&client);

    // ----- a reconnect: credentials go out again on the new connection --------------------
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
    assert_eq!(digest_users(&client).await, ["alice", "carol"]);
    assert_eq!(
        &client.get_data(&guarded).await.unwrap().0[..],
        b"still mine"
    );
    shown.debug(&client);
    // Another client on the same session, as a fault tool would build it.
    let resume = Client::builder(server.connect_string())
        .resume_session(session, client.session_password())
        .auth("digest", CLIENT_AUTH);
    shown.debug(&resume);

    // ----- the session expires -------------------------------------------------------------
    expire_session(
        &server.connect_string(),
        session,
        &client.session_password(),
    )
    .await
    .unwrap();
    wait_for_state(&mut states, "Expired", |s| s == SessionState::Expired).await;
    let expired = client.get_data(&guarded).await.unwrap_err();
    assert_eq!(expired, Error::SessionExpired);
    shown.both(&expired);
    shown.debug(&client);

    // ----- refused credentials end a session -----------------------------------------------
    let refused = connect(&server.connect_string()).await;
    let err = refused
        .add_auth("no-such-scheme", REFUSED_AUTH.as_bytes())
        .await
        .unwrap_err();
    assert_eq!(err, Error::AuthFailed);
    shown.both(&err);
    wait_for_state(&mut refused.state(), "AuthFailed", |s| {
        s == SessionState::AuthFailed
    })
    .await;
    shown.debug(&refused);

    // ----- a warden with credentials, through a rebuilt session ---------------------------
    let warden_builder = Warden::builder(server.connect_string())
        .session_timeout(SESSION_TIMEOUT)
        .connection_timeout(PATIENCE)
        .auth("digest", WARDEN_AUTH);
    shown.debug(&warden_builder);
    let config = warden_builder.clone().build().unwrap();
    shown.debug(&config);
    for auth in &config.auth {
        shown.debug(auth);
    }
    let warden = warden_builder.start().await.unwrap();
    warden
        .add_auth("digest", WARDEN_RUNTIME_AUTH.as_bytes())
        .await
        .unwrap();
    let first = warden.client().expect("a connected session");
    passwords.push((
        "first warden session password".into(),
        first.session_password(),
    ));
    let warden_node = unique_path("warden-guarded");
    warden
        .create(&warden_node, b"w")
        .acl(Acl::CREATOR_ALL)
        .await
        .unwrap();
    shown.debug(&warden);

    let mut events = warden.events();
    for event in expire_and_await_rebuild(&warden, &mut events).await {
        shown.debug(&event);
    }
    let second = warden.client().expect("the rebuilt session");
    assert_ne!(second.session_id(), first.session_id());
    passwords.push((
        "second warden session password".into(),
        second.session_password(),
    ));
    // Both credentials were presented on the new session.
    assert_eq!(digest_users(&second).await, ["bob", "dave"]);
    assert_eq!(&warden.get_data(&warden_node).await.unwrap().0[..], b"w");
    shown.debug(&warden);
    shown.debug(&second);

    // ----- the wire records and wrappers, filled with the real secrets --------------------
    for (_, password) in &passwords {
        shown.both(password);
        let wire = Password(Bytes::copy_from_slice(password.expose()));
        shown.debug(&wire);
        shown.debug(&ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 7,
            timeout_ms: 6000,
            session_id: session.0,
            password: wire.clone(),
            read_only: false,
        });
        shown.debug(&ConnectResponse {
            protocol_version: 0,
            timeout_ms: 6000,
            session_id: session.0,
            password: wire,
            read_only: false,
        });
    }
    for credentials in [
        CLIENT_AUTH,
        CLIENT_RUNTIME_AUTH,
        WARDEN_AUTH,
        WARDEN_RUNTIME_AUTH,
    ] {
        let secret = Secret(Cow::Borrowed(credentials.as_bytes()));
        shown.debug(&secret);
        shown.debug(&AuthPacket {
            kind: 0,
            scheme: "digest",
            auth: secret,
        });
        shown.debug(&AuthConfig {
            scheme: "digest".into(),
            credentials: credentials.into(),
        });
        shown.debug(&Client::builder("127.0.0.1:2181").auth("digest", credentials));
        shown.debug(&WardenBuilder::new("127.0.0.1:2181").auth("digest", credentials));
        let mut config = WardenConfig::new("127.0.0.1:2181");
        config.auth.push(AuthConfig {
            scheme: "digest".into(),
            credentials: credentials.into(),
        });
        shown.debug(&config);
    }
    shown.both(&SessionId(session.0));

    warden.close().await.unwrap();
    second.close().await.unwrap();
    refused.close().await.unwrap();
    client.close().await.unwrap();

    // ----- nothing shows any of it ---------------------------------------------------------
    let mut secrets: Vec<(String, Vec<u8>)> = Vec::new();
    for credentials in [
        CLIENT_AUTH,
        CLIENT_RUNTIME_AUTH,
        WARDEN_AUTH,
        WARDEN_RUNTIME_AUTH,
        REFUSED_AUTH,
    ] {
        secrets.push((credentials.into(), credentials.as_bytes().to_vec()));
        let password = password_of(credentials);
        secrets.push((
            format!("password of {credentials}"),
            password.as_bytes().to_vec(),
        ));
    }
    for (name, password) in &passwords {
        assert_eq!(password.expose().len(), 16, "{name}");
        secrets.push((name.clone(), password.expose().to_vec()));
    }
    for text in &shown.0 {
        assert_no_secret(
            &format!("formatted value {text:?}"),
            text.as_bytes(),
            &secrets,
        );
    }
    let log = log.lock().unwrap().clone();
    assert_no_secret("the trace log", &log, &secrets);

    // The capture did see the moments the secrets were handled, so the check above means
    // something.
    let log = String::from_utf8_lossy(&log);
    for expected in [
        "zk_session",
        "zk_request",
        "zk_op",
        "add_auth",
        "connected",
        "connection lost",
        "authentication failed",
        "session ended",
        "Reconnected",
        &session.to_string(),
        &second.session_id().to_string(),
    ] {
        assert!(
            log.contains(expected),
            "the log never mentions {expected:?}"
        );
    }
    // The redacted forms do show, so a reader knows something was there.
    assert!(shown.0.iter().any(|s| s.contains("redacted")));
    // And `expose` is the one way to the bytes.
    assert_eq!(passwords[0].1.expose().len(), 16);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_passwords_never_reach_debug_display_or_logs() {
    let log = captured_log();
    let server = blocking(|| {
        ZkServer::builder()
            .max_session_timeout(std::time::Duration::from_secs(30))
            .sasl_user("erin", SASL_PASSWORD)
            .start()
    })
    .await
    .expect("start ZooKeeper with SASL");
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let mut shown = Shown::default();
    let sasl = SaslConfig::digest_md5("erin", SASL_PASSWORD);
    shown.debug(&sasl);

    // ----- a client: the exchange on connect and again after a reconnect -----------------
    let builder = Client::builder(proxy.connect_string())
        .session_timeout(SESSION_TIMEOUT)
        .sasl(sasl.clone());
    shown.debug(&builder);
    let client = builder.connect().await.unwrap();
    let guarded = unique_path("sasl-guarded");
    let options =
        CreateOptions::new(CreateMode::Persistent).acl(vec![Acl::sasl(Perms::ALL, "erin")]);
    client.create(&guarded, b"erin's", options).await.unwrap();
    let mut states = client.state();
    proxy.reset_all();
    within(
        "reconnect after the proxy reset",
        states.wait_for(|s| s.connections >= 2 && s.state == SessionState::Connected),
    )
    .await
    .unwrap();
    assert_eq!(&client.get_data(&guarded).await.unwrap().0[..], b"erin's");
    shown.debug(&client);

    // ----- a refused password ---------------------------------------------------------------
    let refused = Client::builder(server.connect_string())
        .session_timeout(SESSION_TIMEOUT)
        .sasl(SaslConfig::digest_md5("erin", SASL_WRONG_PASSWORD));
    shown.debug(&refused);
    let err = refused.connect().await.unwrap_err();
    assert_eq!(err, Error::AuthFailed);
    shown.both(&err);

    // ----- a warden, through a rebuilt session ----------------------------------------------
    let warden_builder = WardenBuilder::new(server.connect_string())
        .session_timeout(SESSION_TIMEOUT)
        .connection_timeout(PATIENCE)
        .sasl(sasl.clone());
    shown.debug(&warden_builder);
    let config = warden_builder.clone().build().unwrap();
    shown.debug(&config);
    shown.debug(&config.sasl);
    let warden = warden_builder.start().await.unwrap();
    let mut events = warden.events();
    expire_and_await_rebuild(&warden, &mut events).await;
    assert_eq!(&warden.get_data(&guarded).await.unwrap().0[..], b"erin's");
    shown.debug(&warden);

    // ----- the wire record, filled with the secret -------------------------------------------
    for password in [SASL_PASSWORD, SASL_WRONG_PASSWORD] {
        shown.debug(&GetSaslRequest {
            token: Secret(Cow::Borrowed(password.as_bytes())),
        });
        shown.debug(&SaslConfig::digest_md5("erin", password));
    }

    warden.close().await.unwrap();
    client.close().await.unwrap();

    // ----- nothing shows either password -------------------------------------------------------
    let secrets: Vec<(String, Vec<u8>)> = [SASL_PASSWORD, SASL_WRONG_PASSWORD]
        .iter()
        .map(|p| (format!("SASL password {p}"), p.as_bytes().to_vec()))
        .collect();
    for text in &shown.0 {
        assert_no_secret(
            &format!("formatted value {text:?}"),
            text.as_bytes(),
            &secrets,
        );
    }
    let log = log.lock().unwrap().clone();
    assert_no_secret("the trace log", &log, &secrets);
    // The capture saw the exchanges and the refusal.
    let log = String::from_utf8_lossy(&log);
    for expected in [
        "SASL authenticated",
        "server refused the credentials",
        "erin",
    ] {
        assert!(
            log.contains(expected),
            "the log never mentions {expected:?}"
        );
    }
    assert!(shown.0.iter().any(|s| s.contains("redacted")));
}

#[test]
fn renderings_find_what_they_should() {
    // The search itself is tested: a leak printed any of these ways would be caught.
    let secret = [0xde_u8, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04, 0x05];
    let forms: Vec<String> = renderings(&secret)
        .into_iter()
        .map(|(_, f)| String::from_utf8(f).unwrap_or_default())
        .collect();
    for leak in [
        format!("{secret:?}"),
        format!("{secret:#?}"),
        format!("{secret:x?}"),
        format!("{:?}", Bytes::copy_from_slice(&secret)),
        "deadbeef0102030405".to_owned(),
        "DEADBEEF0102030405".to_owned(),
        "3q2+7wECAwQF".to_owned(),
    ] {
        assert!(
            forms
                .iter()
                .any(|f| !f.is_empty() && leak.contains(f.as_str())),
            "{leak} not recognised"
        );
    }
    assert_eq!(base64(b"any carnal pleas")[0], "YW55IGNhcm5hbCBwbGVhcw==");
    assert_eq!(base64(b"any carnal pleasu")[0], "YW55IGNhcm5hbCBwbGVhc3U=");
    assert_eq!(base64(b"any carnal pleasur")[0], "YW55IGNhcm5hbCBwbGVhc3Vy");
    // A redacted password shows neither its bytes nor their renderings.
    let password = SessionPassword::new(secret.to_vec());
    let secrets = [("p".to_owned(), secret.to_vec())];
    assert_no_secret("Debug", format!("{password:?}").as_bytes(), &secrets);
    assert_no_secret("Display", password.to_string().as_bytes(), &secrets);
}
