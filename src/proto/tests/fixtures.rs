//! Loading the hex fixture files: `name hex` per line, `#` comments, blank lines ignored.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use bytes::Bytes;

/// The named frames of one fixture file, in file order.
pub(super) struct Fixtures {
    file: &'static str,
    frames: BTreeMap<&'static str, Bytes>,
}

impl Fixtures {
    fn parse(file: &'static str, text: &'static str) -> Fixtures {
        let mut frames = BTreeMap::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, hex) = line
                .split_once(' ')
                .unwrap_or_else(|| panic!("{file}:{}: expected `name hex`", number + 1));
            let frame = from_hex(hex.trim())
                .unwrap_or_else(|| panic!("{file}:{}: bad hex for {name}", number + 1));
            assert!(
                frames.insert(name, Bytes::from(frame)).is_none(),
                "{file}: duplicate fixture {name}"
            );
        }
        Fixtures { file, frames }
    }

    /// The frame called `name`; panics if the file has none.
    pub(super) fn get(&self, name: &str) -> Bytes {
        self.frames
            .get(name)
            .unwrap_or_else(|| panic!("{}: no fixture named {name}", self.file))
            .clone()
    }

    /// Every fixture name.
    pub(super) fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.frames.keys().copied()
    }
}

/// Frames the ZooKeeper 3.8.0 server sent (see the file's header).
pub(super) fn server_replies() -> &'static Fixtures {
    static CELL: OnceLock<Fixtures> = OnceLock::new();
    CELL.get_or_init(|| {
        Fixtures::parse(
            "server_replies.txt",
            include_str!("../fixtures/server_replies.txt"),
        )
    })
}

/// Frames the ZooKeeper 3.8.0 Java client sent (see the file's header).
pub(super) fn client_requests() -> &'static Fixtures {
    static CELL: OnceLock<Fixtures> = OnceLock::new();
    CELL.get_or_init(|| {
        Fixtures::parse(
            "client_requests.txt",
            include_str!("../fixtures/client_requests.txt"),
        )
    })
}

/// Decodes lower- or upper-case hex; `None` for odd lengths or other characters.
pub(super) fn from_hex(hex: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let raw = hex.as_bytes();
    if raw.len() % 2 != 0 {
        return None;
    }
    raw.chunks_exact(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

#[test]
fn hex_parser_accepts_only_hex() {
    assert_eq!(from_hex("00ff7A"), Some(vec![0, 255, 0x7a]));
    assert_eq!(from_hex(""), Some(vec![]));
    assert_eq!(from_hex("abc"), None);
    assert_eq!(from_hex("zz"), None);
}

#[test]
fn fixture_files_parse() {
    assert!(server_replies().names().count() > 40);
    assert!(client_requests().names().count() > 30);
}
