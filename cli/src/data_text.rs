//! Node data in JSON: UTF-8 text as it is, anything else as base64, marked.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::exit::Failure;

/// How a node's data is written in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// The data is valid UTF-8 and written as it is.
    #[default]
    Utf8,
    /// The data is written in standard base64.
    Base64,
}

/// Data as a JSON string and the encoding used.
pub fn encode(data: &[u8]) -> (String, Encoding) {
    match std::str::from_utf8(data) {
        Ok(text) => (text.to_owned(), Encoding::Utf8),
        Err(_) => (STANDARD.encode(data), Encoding::Base64),
    }
}

/// The bytes of a string written with `encoding`.
///
/// # Errors
/// [`Failure::Usage`] for invalid base64.
pub fn decode(text: &str, encoding: Encoding) -> Result<Vec<u8>, Failure> {
    match encoding {
        Encoding::Utf8 => Ok(text.as_bytes().to_vec()),
        Encoding::Base64 => STANDARD
            .decode(text)
            .map_err(|e| Failure::Usage(format!("invalid base64 data: {e}"))),
    }
}

/// Data for a person: the text itself, or base64 with a marker.
pub fn human(data: &[u8]) -> String {
    match encode(data) {
        (text, Encoding::Utf8) => text,
        (b64, Encoding::Base64) => format!("(binary, {} bytes, base64) {b64}", data.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_round_trips_through_base64() {
        let data = [0u8, 159, 146, 150, 255];
        let (text, encoding) = encode(&data);
        assert_eq!(encoding, Encoding::Base64);
        assert_eq!(decode(&text, encoding).unwrap(), data);
        assert_eq!(encode(b"plain"), ("plain".to_owned(), Encoding::Utf8));
        assert!(decode("not base64!", Encoding::Base64).is_err());
    }
}
