//! The client side of SASL DIGEST-MD5 (RFC 2831), quality of protection `auth` only.
//!
//! No I/O: [`DigestMd5Client::step`] takes what the server sent and returns what to send
//! back. The exchange is: the client starts with an empty token; the server sends a
//! challenge (realm, nonce, qop, charset, algorithm); the client answers with a response
//! that proves it knows the password without revealing it; the server answers with
//! `rspauth`, which proves the server knows the password too, and the exchange is complete.

use std::fmt::{self, Write as _};

use base64::Engine as _;
use md5::{Digest, Md5};

/// Why a DIGEST-MD5 exchange could not go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DigestMd5Error {
    /// The server's message does not follow the RFC 2831 grammar.
    #[error("malformed DIGEST-MD5 message: {0}")]
    Malformed(String),
    /// A directive the message must carry is absent.
    #[error("DIGEST-MD5 challenge lacks the `{0}` directive")]
    Missing(&'static str),
    /// A directive that may appear once appears again.
    #[error("DIGEST-MD5 directive `{0}` appears more than once")]
    Duplicate(String),
    /// The server asks for something this client does not do.
    #[error("unsupported DIGEST-MD5 challenge: {0}")]
    Unsupported(String),
    /// The server's `rspauth` does not match: it does not know the password (or is not the
    /// server it claims to be).
    #[error("the server's DIGEST-MD5 proof (rspauth) is wrong")]
    BadServerProof,
    /// A message arrived after the exchange was complete.
    #[error("unexpected DIGEST-MD5 message after the exchange completed")]
    Unexpected,
    /// The local random number generator failed.
    #[error("no randomness for the DIGEST-MD5 client nonce: {0}")]
    Random(String),
}

/// The service name ZooKeeper's servers use in the digest URI.
pub(crate) const SERVICE: &str = "zookeeper";
/// The server name ZooKeeper's servers use for DIGEST-MD5 (and their default realm).
pub(crate) const SERVER_NAME: &str = "zk-sasl-md5";

/// Where the exchange stands.
enum State {
    /// Waiting for the server's challenge.
    Challenge,
    /// Response sent; waiting for the server's proof.
    ServerProof { expected: String },
    /// Done.
    Complete,
}

/// One DIGEST-MD5 authentication, for one connection.
pub(crate) struct DigestMd5Client {
    username: String,
    password: String,
    digest_uri: String,
    state: State,
}

impl fmt::Debug for DigestMd5Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DigestMd5Client")
            .field("username", &self.username)
            .field("digest_uri", &self.digest_uri)
            .finish_non_exhaustive()
    }
}

impl DigestMd5Client {
    /// A client for ZooKeeper (`digest-uri` `zookeeper/zk-sasl-md5`).
    pub(crate) fn new(username: &str, password: &str) -> DigestMd5Client {
        DigestMd5Client::with_uri(username, password, &format!("{SERVICE}/{SERVER_NAME}"))
    }

    fn with_uri(username: &str, password: &str, digest_uri: &str) -> DigestMd5Client {
        DigestMd5Client {
            username: username.to_owned(),
            password: password.to_owned(),
            digest_uri: digest_uri.to_owned(),
            state: State::Challenge,
        }
    }

    /// The user authenticating.
    pub(crate) fn username(&self) -> &str {
        &self.username
    }

    /// True once the server has proven it knows the password.
    pub(crate) fn is_complete(&self) -> bool {
        matches!(self.state, State::Complete)
    }

    /// Takes the server's next message; returns the token to send (`None` when the exchange
    /// is complete and nothing more goes out).
    pub(crate) fn step(&mut self, server: &[u8]) -> Result<Option<Vec<u8>>, DigestMd5Error> {
        match self.state {
            State::Challenge => {
                let cnonce = new_cnonce()?;
                self.respond(server, &cnonce).map(Some)
            }
            State::ServerProof { .. } => {
                self.check_proof(server)?;
                Ok(None)
            }
            State::Complete => Err(DigestMd5Error::Unexpected),
        }
    }

    /// Answers `challenge` with the given client nonce.
    fn respond(&mut self, challenge: &[u8], cnonce: &str) -> Result<Vec<u8>, DigestMd5Error> {
        let challenge = Challenge::parse(challenge)?;
        let utf8 = challenge.utf8;
        let realm = challenge.realm.clone().unwrap_or_default();
        let user = encode(&self.username, utf8)?;
        let password = encode(&self.password, utf8)?;
        let realm_bytes = encode(&realm, utf8)?;
        let nc = "00000001";

        let mut inner = Md5::new();
        inner.update(&user);
        inner.update(b":");
        inner.update(&realm_bytes);
        inner.update(b":");
        inner.update(&password);
        let mut a1 = Md5::new();
        a1.update(inner.finalize());
        a1.update(b":");
        a1.update(challenge.nonce.as_bytes());
        a1.update(b":");
        a1.update(cnonce.as_bytes());
        let ha1 = hex(&a1.finalize());

        let proof = |a2_prefix: &str| {
            let ha2 = hex(&Md5::digest(format!("{a2_prefix}:{}", self.digest_uri)));
            let kd = format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", challenge.nonce);
            hex(&Md5::digest(kd.as_bytes()))
        };
        let response = proof("AUTHENTICATE");
        let expected = proof("");

        let mut out = String::new();
        if utf8 {
            out.push_str("charset=utf-8,");
        }
        out.push_str("username=");
        push_quoted(&mut out, &self.username);
        if challenge.realm.is_some() {
            out.push_str(",realm=");
            push_quoted(&mut out, &realm);
        }
        out.push_str(",nonce=");
        push_quoted(&mut out, &challenge.nonce);
        let _ = write!(out, ",nc={nc},cnonce=");
        push_quoted(&mut out, cnonce);
        out.push_str(",digest-uri=");
        push_quoted(&mut out, &self.digest_uri);
        let _ = write!(out, ",response={response},qop=auth");

        // The response itself travels in UTF-8 when the server accepts it, else in ISO 8859-1
        // (every character was checked to fit above).
        let bytes = if utf8 {
            out.into_bytes()
        } else {
            encode(&out, false)?
        };
        self.state = State::ServerProof { expected };
        Ok(bytes)
    }

    fn check_proof(&mut self, message: &[u8]) -> Result<(), DigestMd5Error> {
        let State::ServerProof { expected } = &self.state else {
            return Err(DigestMd5Error::Unexpected);
        };
        let mut rspauth = None;
        for (name, value) in parse_directives(message)? {
            if name == "rspauth" {
                if rspauth.is_some() {
                    return Err(DigestMd5Error::Duplicate(name));
                }
                rspauth = Some(value);
            }
        }
        let rspauth = rspauth.ok_or(DigestMd5Error::Missing("rspauth"))?;
        if !constant_time_eq(rspauth.to_ascii_lowercase().as_bytes(), expected.as_bytes()) {
            return Err(DigestMd5Error::BadServerProof);
        }
        self.state = State::Complete;
        Ok(())
    }
}

/// What the client needs from a server's challenge.
#[derive(Debug, PartialEq, Eq)]
struct Challenge {
    /// The first realm offered, if any.
    realm: Option<String>,
    nonce: String,
    /// The server accepts UTF-8 (`charset=utf-8`).
    utf8: bool,
}

impl Challenge {
    fn parse(raw: &[u8]) -> Result<Challenge, DigestMd5Error> {
        let mut realm = None;
        let mut nonce = None;
        let mut qop = None;
        let mut charset = None;
        let mut algorithm = None;
        for (name, value) in parse_directives(raw)? {
            let slot = match name.as_str() {
                // Several realms may be offered: take the first.
                "realm" => {
                    realm.get_or_insert(value);
                    continue;
                }
                "nonce" => &mut nonce,
                "qop" => &mut qop,
                "charset" => &mut charset,
                "algorithm" => &mut algorithm,
                // stale, maxbuf, cipher and directives of later revisions: not needed here.
                _ => continue,
            };
            if slot.is_some() {
                return Err(DigestMd5Error::Duplicate(name));
            }
            *slot = Some(value);
        }
        let nonce = nonce.ok_or(DigestMd5Error::Missing("nonce"))?;
        match algorithm {
            Some(a) if a.eq_ignore_ascii_case("md5-sess") => {}
            Some(other) => {
                return Err(DigestMd5Error::Unsupported(format!(
                    "algorithm {other:?} (only md5-sess)"
                )));
            }
            None => return Err(DigestMd5Error::Missing("algorithm")),
        }
        // No qop directive means "auth" only.
        if let Some(qop) = qop {
            if !qop
                .split(',')
                .any(|q| q.trim().eq_ignore_ascii_case("auth"))
            {
                return Err(DigestMd5Error::Unsupported(format!(
                    "qop {qop:?} (only auth is implemented)"
                )));
            }
        }
        let utf8 = match charset {
            None => false,
            Some(c) if c.eq_ignore_ascii_case("utf-8") => true,
            Some(other) => {
                return Err(DigestMd5Error::Unsupported(format!("charset {other:?}")));
            }
        };
        Ok(Challenge { realm, nonce, utf8 })
    }
}

/// Splits `name=value, name="quoted \"value\"", ...` into lower-cased names and unescaped
/// values. Empty list elements and linear white space around elements are allowed.
fn parse_directives(raw: &[u8]) -> Result<Vec<(String, String)>, DigestMd5Error> {
    let text = std::str::from_utf8(raw)
        .map_err(|_| DigestMd5Error::Malformed("not valid UTF-8".into()))?;
    let mut chars = text.chars().peekable();
    let mut out = Vec::new();
    loop {
        while chars
            .next_if(|c| c.is_ascii_whitespace() || *c == ',')
            .is_some()
        {}
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut name = String::new();
        while let Some(c) = chars.next_if(|c| is_token_char(*c)) {
            name.push(c.to_ascii_lowercase());
        }
        while chars.next_if(char::is_ascii_whitespace).is_some() {}
        if name.is_empty() || chars.next() != Some('=') {
            return Err(DigestMd5Error::Malformed(format!(
                "expected `name=value` after {} directive(s)",
                out.len()
            )));
        }
        while chars.next_if(char::is_ascii_whitespace).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => return Err(unterminated(&name)),
                    },
                    Some(c) => value.push(c),
                    None => return Err(unterminated(&name)),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| is_token_char(*c)) {
                value.push(c);
            }
            if value.is_empty() {
                return Err(DigestMd5Error::Malformed(format!(
                    "directive `{name}` has no value"
                )));
            }
        }
        while chars.next_if(char::is_ascii_whitespace).is_some() {}
        match chars.next() {
            None | Some(',') => out.push((name, value)),
            Some(c) => {
                return Err(DigestMd5Error::Malformed(format!(
                    "unexpected {c:?} after directive `{name}`"
                )));
            }
        }
    }
}

fn unterminated(name: &str) -> DigestMd5Error {
    DigestMd5Error::Malformed(format!("unterminated quoted value of `{name}`"))
}

/// RFC 2616 token characters: visible ASCII except separators.
fn is_token_char(c: char) -> bool {
    c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?={}".contains(c)
}

/// Appends `value` as a quoted string, escaping `"` and `\`.
fn push_quoted(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// The bytes hashed and sent for `s`: ISO 8859-1 when every character fits (RFC 2831
/// requires the conversion even when the server accepts UTF-8), UTF-8 otherwise, which only
/// a server that offered `charset=utf-8` accepts.
fn encode(s: &str, utf8_allowed: bool) -> Result<Vec<u8>, DigestMd5Error> {
    if s.chars().all(|c| (c as u32) <= 0xff) {
        return Ok(s.chars().map(|c| c as u32 as u8).collect());
    }
    if utf8_allowed {
        Ok(s.as_bytes().to_vec())
    } else {
        Err(DigestMd5Error::Unsupported(
            "credentials outside ISO 8859-1, and the server did not offer charset=utf-8".into(),
        ))
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A fresh client nonce: 24 bytes from the operating system's CSPRNG, base64 (32 characters,
/// no quoting needed).
fn new_cnonce() -> Result<String, DigestMd5Error> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| DigestMd5Error::Random(e.to_string()))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example exchange of RFC 2831 section 4 (IMAP, user chris, password secret).
    const RFC_CHALLENGE: &str = "realm=\"elwood.innosoft.com\",nonce=\"OA6MG9tEQGm2hh\",\
        qop=\"auth\",algorithm=md5-sess,charset=utf-8";

    fn rfc_client() -> DigestMd5Client {
        DigestMd5Client::with_uri("chris", "secret", "imap/elwood.innosoft.com")
    }

    fn directive(message: &[u8], name: &str) -> Option<String> {
        parse_directives(message)
            .unwrap()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    #[test]
    fn rfc_2831_example_exchange() {
        let mut client = rfc_client();
        let response = client
            .respond(RFC_CHALLENGE.as_bytes(), "OA6MHXh6VqTrRk")
            .unwrap();
        // Values from the RFC (checked independently with Python's hashlib).
        assert_eq!(
            directive(&response, "response").as_deref(),
            Some("d388dad90d4bbd760a152321f2143af7")
        );
        assert_eq!(
            String::from_utf8(response).unwrap(),
            "charset=utf-8,username=\"chris\",realm=\"elwood.innosoft.com\",\
             nonce=\"OA6MG9tEQGm2hh\",nc=00000001,cnonce=\"OA6MHXh6VqTrRk\",\
             digest-uri=\"imap/elwood.innosoft.com\",response=d388dad90d4bbd760a152321f2143af7,\
             qop=auth"
        );
        assert!(!client.is_complete());
        assert_eq!(
            client
                .step(b"rspauth=ea40f60335c427b5527b84dbabcdfffd")
                .unwrap(),
            None
        );
        assert!(client.is_complete());
        assert_eq!(client.step(b"rspauth=x"), Err(DigestMd5Error::Unexpected));
    }

    #[test]
    fn wrong_server_proof_is_refused() {
        let mut client = rfc_client();
        client
            .respond(RFC_CHALLENGE.as_bytes(), "OA6MHXh6VqTrRk")
            .unwrap();
        assert_eq!(
            client.step(b"rspauth=ea40f60335c427b5527b84dbabcdfffe"),
            Err(DigestMd5Error::BadServerProof)
        );
        assert!(!client.is_complete());
        let mut client = rfc_client();
        client
            .respond(RFC_CHALLENGE.as_bytes(), "OA6MHXh6VqTrRk")
            .unwrap();
        assert_eq!(client.step(b""), Err(DigestMd5Error::Missing("rspauth")));
    }

    #[test]
    fn zookeeper_shaped_challenge_with_a_random_cnonce() {
        // As a ZooKeeper 3.8 server sends it (realm = its server name).
        let challenge =
            b"realm=\"zk-sasl-md5\",nonce=\"8ZL+yDuYyZ1Kq1SwPuTCzJnpQJmOMQeCsbsQZ4nF\",\
            charset=utf-8,algorithm=md5-sess";
        let mut client = DigestMd5Client::new("bob", "hunter2");
        let response = client.step(challenge).unwrap().unwrap();
        assert_eq!(
            directive(&response, "digest-uri").as_deref(),
            Some("zookeeper/zk-sasl-md5")
        );
        let cnonce = directive(&response, "cnonce").unwrap();
        assert_eq!(cnonce.len(), 32);
        let again = DigestMd5Client::new("bob", "hunter2")
            .step(challenge)
            .unwrap()
            .unwrap();
        assert_ne!(directive(&again, "cnonce").unwrap(), cnonce);
        assert!(!String::from_utf8_lossy(&response).contains("hunter2"));
    }

    #[test]
    fn parser_handles_quotes_escapes_and_white_space() {
        let parsed = parse_directives(
            b" , realm = \"a \\\"quoted\\\" realm, with comma\" ,,nonce=\"n\\\\1\",\r\n qop=auth ,",
        )
        .unwrap();
        assert_eq!(
            parsed,
            vec![
                ("realm".into(), "a \"quoted\" realm, with comma".into()),
                ("nonce".into(), "n\\1".into()),
                ("qop".into(), "auth".into()),
            ]
        );
        assert_eq!(parse_directives(b"").unwrap(), vec![]);
        assert_eq!(
            parse_directives(b"NONCE=x").unwrap(),
            vec![("nonce".into(), "x".into())]
        );
    }

    /// The variant of an error, for comparing kinds without their messages.
    fn kind(e: &DigestMd5Error) -> &'static str {
        match e {
            DigestMd5Error::Malformed(_) => "malformed",
            DigestMd5Error::Missing(_) => "missing",
            DigestMd5Error::Duplicate(_) => "duplicate",
            DigestMd5Error::Unsupported(_) => "unsupported",
            DigestMd5Error::BadServerProof => "bad proof",
            DigestMd5Error::Unexpected => "unexpected",
            DigestMd5Error::Random(_) => "random",
        }
    }

    #[test]
    fn malformed_challenges_are_typed_errors() {
        let cases: &[(&[u8], &str)] = &[
            (b"nonce=\"abc", "malformed"),
            (b"nonce=\"abc\\", "malformed"),
            (b"nonce", "malformed"),
            (b"=x", "malformed"),
            (b"nonce=", "malformed"),
            (b"nonce=\"a\"b", "malformed"),
            (b"nonce=a b", "malformed"),
            (b"\xff\xfe", "malformed"),
            (b"algorithm=md5-sess", "missing"),
            (b"nonce=a", "missing"),
            (b"nonce=a,nonce=b,algorithm=md5-sess", "duplicate"),
            (b"nonce=a,algorithm=md5", "unsupported"),
            (
                b"nonce=a,algorithm=md5-sess,qop=\"auth-conf\"",
                "unsupported",
            ),
            (b"nonce=a,algorithm=md5-sess,charset=latin1", "unsupported"),
        ];
        for (raw, expected) in cases {
            let err = DigestMd5Client::new("u", "p")
                .step(raw)
                .expect_err(&String::from_utf8_lossy(raw));
            assert_eq!(
                kind(&err),
                *expected,
                "{:?} gave {err:?}",
                String::from_utf8_lossy(raw)
            );
        }
        assert_eq!(
            Challenge::parse(b"algorithm=md5-sess"),
            Err(DigestMd5Error::Missing("nonce"))
        );
        assert_eq!(
            Challenge::parse(b"nonce=a"),
            Err(DigestMd5Error::Missing("algorithm"))
        );
    }

    #[test]
    fn several_realms_and_qops() {
        let c = Challenge::parse(
            b"realm=\"first\",realm=\"second\",nonce=n,qop=\"auth-int,auth\",algorithm=MD5-SESS",
        )
        .unwrap();
        assert_eq!(c.realm.as_deref(), Some("first"));
        assert!(!c.utf8);
        // Without a realm the response carries none (and hashes an empty one).
        let mut client = DigestMd5Client::new("u", "p");
        let response = client.step(b"nonce=n,algorithm=md5-sess").unwrap().unwrap();
        assert_eq!(directive(&response, "realm"), None);
    }

    #[test]
    fn credentials_are_hashed_as_latin1_when_they_fit() {
        // "é" fits ISO 8859-1: hashed as the single byte 0xe9 (RFC 2831 2.1.2.1).
        assert_eq!(encode("é", true).unwrap(), vec![0xe9]);
        assert_eq!(encode("é", false).unwrap(), vec![0xe9]);
        assert_eq!(encode("密", true).unwrap(), "密".as_bytes());
        assert!(matches!(
            encode("密", false),
            Err(DigestMd5Error::Unsupported(_))
        ));
    }

    proptest::proptest! {
        /// Whatever a server sends, the client answers or returns an error; it never panics.
        #[test]
        fn arbitrary_server_messages_never_panic(
            first in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            second in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
        ) {
            let mut client = DigestMd5Client::new("u", "p");
            if client.step(&first).is_ok() {
                let _ = client.step(&second);
            }
        }

        /// Quoted values come back as they went in.
        #[test]
        fn quoted_values_round_trip(value in ".{0,40}") {
            let mut quoted = String::new();
            push_quoted(&mut quoted, &value);
            let parsed = parse_directives(format!("x={quoted}").as_bytes()).unwrap();
            proptest::prop_assert_eq!(&parsed[0].1, &value);
        }
    }

    #[test]
    fn quoting_escapes_user_names() {
        let mut out = String::new();
        push_quoted(&mut out, "a\"b\\c");
        assert_eq!(out, "\"a\\\"b\\\\c\"");
        let back = parse_directives(format!("username={out}").as_bytes()).unwrap();
        assert_eq!(back[0].1, "a\"b\\c");
    }
}
