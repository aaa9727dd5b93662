//! [`Credentials`]: the `(scheme, secret)` pairs a session presents with `addAuth`.

use std::fmt;

/// Credentials a session presents to every server it connects to (`addAuth`), as
/// `(scheme, secret)` pairs in the order they were given, for example
/// `("digest", b"user:password")`.
///
/// `Debug` shows the schemes and never a secret, so structs holding credentials can derive
/// `Debug`.
///
/// ```
/// use zkwarden::client::Credentials;
///
/// let creds = Credentials::new().with("digest", "bob:hunter2");
/// assert_eq!(format!("{creds:?}"), r#"Credentials { schemes: ["digest"] }"#);
/// assert!(creds.contains("digest", b"bob:hunter2"));
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    entries: Vec<(String, Vec<u8>)>,
}

impl Credentials {
    /// No credentials.
    pub fn new() -> Credentials {
        Credentials::default()
    }

    /// These credentials and `(scheme, secret)` after them.
    #[must_use]
    pub fn with(mut self, scheme: impl Into<String>, secret: impl Into<Vec<u8>>) -> Credentials {
        self.push(scheme, secret);
        self
    }

    /// Adds `(scheme, secret)` at the end.
    pub fn push(&mut self, scheme: impl Into<String>, secret: impl Into<Vec<u8>>) {
        self.entries.push((scheme.into(), secret.into()));
    }

    /// Adds `(scheme, secret)` unless it is already there; returns whether it was added.
    pub fn insert(&mut self, scheme: impl Into<String>, secret: impl Into<Vec<u8>>) -> bool {
        let (scheme, secret) = (scheme.into(), secret.into());
        if self.contains(&scheme, &secret) {
            return false;
        }
        self.entries.push((scheme, secret));
        true
    }

    /// Whether `(scheme, secret)` is among these credentials.
    pub fn contains(&self, scheme: &str, secret: &[u8]) -> bool {
        self.entries.iter().any(|(s, a)| s == scheme && a == secret)
    }

    /// The pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.entries.iter().map(|(s, a)| (s.as_str(), a.as_slice()))
    }

    /// The schemes, in order (what `Debug` shows).
    pub fn schemes(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(s, _)| s.as_str())
    }

    /// How many pairs there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("schemes", &self.schemes().collect::<Vec<_>>())
            .finish()
    }
}

impl<S: Into<String>, B: Into<Vec<u8>>> FromIterator<(S, B)> for Credentials {
    fn from_iter<I: IntoIterator<Item = (S, B)>>(iter: I) -> Credentials {
        Credentials {
            entries: iter
                .into_iter()
                .map(|(s, b)| (s.into(), b.into()))
                .collect(),
        }
    }
}

impl IntoIterator for Credentials {
    type Item = (String, Vec<u8>);
    type IntoIter = std::vec::IntoIter<(String, Vec<u8>)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_names_schemes_only() {
        let creds: Credentials = [("digest", "bob:hunter2"), ("ip", "10.0.0.1")]
            .into_iter()
            .collect();
        let shown = format!("{creds:?} {creds:#?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("10.0.0.1"),
            "{shown}"
        );
        assert!(shown.contains("digest") && shown.contains("ip"), "{shown}");
    }

    #[test]
    fn insert_skips_pairs_already_there() {
        let mut creds = Credentials::new().with("digest", "a:b");
        assert!(!creds.insert("digest", "a:b"));
        assert!(creds.insert("digest", "a:c"));
        let pairs: Vec<_> = creds.iter().collect();
        assert_eq!(pairs, [("digest", &b"a:b"[..]), ("digest", &b"a:c"[..])]);
    }
}
