//! Path rules (the same as the server's) and the chroot prefix.

use crate::error::{Error, Result};

/// `/a/b` → (`/a`, `b`); `/b` → (`/`, `b`); a sequential `/a/` → (`/a`, ``).
pub fn split_parent(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(0) => ("/", &path[1..]),
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("/", path),
    }
}

/// The path of child `name` of `parent`.
pub fn join(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// Checks `path` against ZooKeeper's rules: absolute, no empty, `.` or `..` segments, no
/// trailing slash (except the root, or a sequential create's prefix), no NUL and no characters
/// the server refuses.
pub fn validate_path(path: &str, sequential: bool) -> Result<()> {
    let fail = |reason: &'static str| {
        Err(Error::InvalidPath {
            path: path.to_owned(),
            reason,
        })
    };
    if path.is_empty() {
        return fail("path is empty");
    }
    if !path.starts_with('/') {
        return fail("path must start with '/'");
    }
    if path.len() == 1 {
        return if sequential {
            fail("a sequential node needs a name prefix or a parent")
        } else {
            Ok(())
        };
    }
    // A sequential create may end in '/': the server appends the sequence number.
    let checked = if sequential && path.ends_with('/') {
        &path[..path.len() - 1]
    } else {
        path
    };
    if checked.ends_with('/') {
        return fail("path must not end with '/'");
    }
    for segment in checked[1..].split('/') {
        match segment {
            "" => return fail("path has an empty segment"),
            "." | ".." => return fail("relative segments '.' and '..' are not allowed"),
            _ => {}
        }
    }
    // Paths are nearly always printable ASCII: check bytes, and decode characters only when
    // a non-ASCII byte shows up (this runs on every request).
    let bytes = path.as_bytes();
    if bytes.iter().all(|&b| (0x20..0x7f).contains(&b)) {
        return Ok(());
    }
    for c in path.chars() {
        if c == '\0' {
            return fail("path contains NUL");
        }
        if is_disallowed(c) {
            return fail("path contains a character ZooKeeper does not allow");
        }
    }
    Ok(())
}

/// Characters the server's path check refuses: control characters and a few reserved ranges.
/// The server checks UTF-16 code units and refuses surrogates (U+D800 to U+DFFF), so every
/// character outside the Basic Multilingual Plane, which Java holds as a surrogate pair, is
/// refused too.
fn is_disallowed(c: char) -> bool {
    matches!(c,
        '\u{1}'..='\u{1f}'
        | '\u{7f}'..='\u{9f}'
        | '\u{e000}'..='\u{f8ff}'
        | '\u{fff0}'..='\u{ffff}'
        | '\u{10000}'..)
}

/// A chroot: a prefix added to every path sent and removed from every path received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chroot(Option<String>);

impl Chroot {
    /// No chroot.
    pub fn none() -> Chroot {
        Chroot(None)
    }

    /// A chroot at `prefix` (validated; `/` means none).
    pub fn new(prefix: &str) -> Result<Chroot> {
        validate_path(prefix, false)?;
        Ok(if prefix == "/" {
            Chroot(None)
        } else {
            Chroot(Some(prefix.to_owned()))
        })
    }

    /// The prefix, if any.
    pub fn prefix(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// Length in bytes the prefix adds to a path.
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, String::len)
    }

    /// Whether there is no chroot.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// Writes the server-side form of `path` into `out`.
    pub fn apply_into(&self, path: &str, out: &mut String) {
        out.clear();
        match &self.0 {
            None => out.push_str(path),
            Some(prefix) => {
                out.push_str(prefix);
                if path != "/" {
                    out.push_str(path);
                }
            }
        }
    }

    /// The server-side form of `path`.
    pub fn apply(&self, path: &str) -> String {
        let mut out = String::with_capacity(self.len() + path.len());
        self.apply_into(path, &mut out);
        out
    }

    /// The client-side form of a server path, or `None` when it lies outside the chroot.
    pub fn strip<'p>(&self, server_path: &'p str) -> Option<&'p str> {
        match &self.0 {
            None => Some(server_path),
            Some(prefix) => {
                let rest = server_path.strip_prefix(prefix.as_str())?;
                if rest.is_empty() {
                    Some("/")
                } else if rest.starts_with('/') {
                    Some(rest)
                } else {
                    None
                }
            }
        }
    }

    /// Like [`Chroot::strip`], returning an owned path and leaving paths outside the chroot as
    /// they are.
    pub fn strip_owned(&self, server_path: String) -> String {
        match self.strip(&server_path) {
            Some(p) if p.len() == server_path.len() => server_path,
            Some(p) => p.to_owned(),
            None => server_path,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_split() {
        assert_eq!(split_parent("/a/b"), ("/a", "b"));
        assert_eq!(split_parent("/b"), ("/", "b"));
        assert_eq!(split_parent("/a/"), ("/a", ""));
        assert_eq!(join("/", "x"), "/x");
        assert_eq!(join("/a", "x"), "/a/x");
    }

    #[test]
    fn accepts_ordinary_paths() {
        for p in ["/", "/a", "/a/b-c_d.e", "/zookeeper/config", "/ünïcode"] {
            assert!(validate_path(p, false).is_ok(), "{p}");
        }
        assert!(validate_path("/a/", true).is_ok());
        assert!(validate_path("/a/lock-", true).is_ok());
    }

    #[test]
    fn rejects_bad_paths_with_reasons() {
        for p in [
            "",
            "a",
            "/a/",
            "//",
            "/a//b",
            "/a/./b",
            "/a/..",
            "/a\0b",
            "/a\u{1}",
            "/\u{e000}",
            "/\u{fff5}",
            "/\u{10000}",
            "/emoji-\u{1f600}",
        ] {
            let err = validate_path(p, false).unwrap_err();
            assert!(matches!(err, Error::InvalidPath { .. }), "{p:?}: {err}");
        }
        assert!(validate_path("/", true).is_err());
    }

    #[test]
    fn chroot_applies_and_strips() {
        let c = Chroot::new("/app").unwrap();
        assert_eq!(c.apply("/"), "/app");
        assert_eq!(c.apply("/x/y"), "/app/x/y");
        assert_eq!(c.strip("/app"), Some("/"));
        assert_eq!(c.strip("/app/x"), Some("/x"));
        assert_eq!(c.strip("/apple"), None);
        assert_eq!(c.strip("/other"), None);
        assert_eq!(Chroot::new("/").unwrap(), Chroot::none());
        assert_eq!(Chroot::none().apply("/x"), "/x");
    }
}
