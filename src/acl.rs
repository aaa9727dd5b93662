//! Building ACLs: the identities of ZooKeeper's built-in schemes, and digest ids computed the
//! way the server computes them.
//!
//! | scheme | who matches | made with |
//! |---|---|---|
//! | `world` | everyone (`world:anyone`) | [`Acl::anyone`] |
//! | `auth` | every identity authenticated on the session that sets the ACL | [`Acl::creator`] |
//! | `digest` | sessions that ran `add_auth("digest", "user:password")` | [`Acl::digest`] |
//! | `ip` | clients connecting from an address or CIDR range | [`Acl::ip`] |
//! | `sasl` | sessions that authenticated with SASL as the user | [`Acl::sasl`] |
//!
//! Permissions are the bits of [`Perms`], combined with `|`.
//!
//! ```
//! use zkwarden::acl::{self, digest_id};
//! use zkwarden::{Acl, Perms};
//!
//! // Only bob (after `add_auth("digest", "bob:hunter2")`) may write; anyone may read.
//! let acl = vec![
//!     Acl::digest(Perms::ALL, "bob", "hunter2"),
//!     Acl::anyone(Perms::READ),
//! ];
//! assert_eq!(acl[0].id.id, digest_id("bob", "hunter2"));
//! assert_eq!(acl::digest_credentials("bob", "hunter2"), b"bob:hunter2");
//! ```
//!
//! [`Perms`]: crate::Perms

use base64::Engine as _;
use sha1::{Digest, Sha1};

use crate::proto::{Acl, Id};

/// The `digest` scheme's id for `user` with `password`: `user:` followed by the base64 of the
/// SHA-1 of `user:password`, exactly as ZooKeeper's `DigestAuthenticationProvider` computes
/// it. A session matches it after `add_auth("digest", "user:password")`.
///
/// The server splits credentials at the first `:`, so a user name containing `:` can never
/// match.
///
/// ```
/// assert_eq!(
///     zkwarden::acl::digest_id("bob", "hunter2"),
///     "bob:1Yu1ryCXOIF7lyFzbmQ5J+MJOZc=",
/// );
/// ```
pub fn digest_id(user: &str, password: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(user.as_bytes());
    sha.update(b":");
    sha.update(password.as_bytes());
    let hash = base64::engine::general_purpose::STANDARD.encode(sha.finalize());
    format!("{user}:{hash}")
}

/// The credentials to hand to `add_auth("digest", ...)` for `user` and `password`
/// (`user:password`).
pub fn digest_credentials(user: &str, password: &str) -> Vec<u8> {
    format!("{user}:{password}").into_bytes()
}

impl Id {
    /// `digest:<user>:<base64 sha1>` for `user` with `password` (see [`digest_id`]).
    pub fn digest(user: &str, password: &str) -> Id {
        Id::new("digest", digest_id(user, password))
    }

    /// `ip:<address or CIDR>`, e.g. `127.0.0.1` or `10.0.0.0/8`.
    pub fn ip(address: impl Into<String>) -> Id {
        Id::new("ip", address)
    }

    /// `sasl:<user>`: sessions that authenticated with SASL as `user`.
    pub fn sasl(user: impl Into<String>) -> Id {
        Id::new("sasl", user)
    }
}

impl Acl {
    /// `perms` for everyone (`world:anyone`).
    pub fn anyone(perms: i32) -> Acl {
        Acl::new(perms, Id::ANYONE)
    }

    /// `perms` for the identities authenticated on the session that creates the node or
    /// sets the ACL (scheme `auth`). The server fails the request with `InvalidAcl` when that
    /// session has no authenticated identity.
    pub fn creator(perms: i32) -> Acl {
        Acl::new(perms, Id::AUTH)
    }

    /// `perms` for sessions that added the digest credentials `user:password`.
    pub fn digest(perms: i32, user: &str, password: &str) -> Acl {
        Acl::new(perms, Id::digest(user, password))
    }

    /// `perms` for clients connecting from `address` (an IP address or a CIDR range).
    pub fn ip(perms: i32, address: impl Into<String>) -> Acl {
        Acl::new(perms, Id::ip(address))
    }

    /// `perms` for sessions that authenticated with SASL as `user`.
    pub fn sasl(perms: i32, user: impl Into<String>) -> Acl {
        Acl::new(perms, Id::sasl(user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Perms;

    #[test]
    fn digest_ids_match_zookeeper() {
        // Computed by ZooKeeper 3.8's own
        // `java org.apache.zookeeper.server.auth.DigestAuthenticationProvider bob:hunter2 ...`.
        assert_eq!(
            digest_id("bob", "hunter2"),
            "bob:1Yu1ryCXOIF7lyFzbmQ5J+MJOZc="
        );
        assert_eq!(
            digest_id("alice", "s3cr3t"),
            "alice:w3bQjtoAuWUvjHko4NMJGcLu5UA="
        );
        // The password may itself contain ':' (only the first one separates).
        assert_eq!(digest_id("u", "a:b"), "u:Ka3Bfj2GPj7fp0ffwAw1Arlu9+Q=");
    }

    #[test]
    fn constructors() {
        let acl = Acl::digest(Perms::READ | Perms::WRITE, "bob", "hunter2");
        assert_eq!(acl.perms, 3);
        assert_eq!(acl.id.scheme, "digest");
        assert_eq!(Acl::anyone(Perms::READ).id, Id::ANYONE);
        assert_eq!(Acl::creator(Perms::ALL).id, Id::AUTH);
        assert_eq!(Acl::ip(Perms::ALL, "10.0.0.0/8").id.id, "10.0.0.0/8");
        assert_eq!(Acl::sasl(Perms::ADMIN, "bob").id, Id::new("sasl", "bob"));
    }
}
