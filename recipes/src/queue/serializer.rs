//! [`QueueSerializer`]: how queue items become bytes and back, with the two serializers most
//! users need ([`BytesSerializer`], [`JsonSerializer`]).

use std::marker::PhantomData;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use zkwarden::{Error, Result};

/// Turns items into the bytes stored for them and back (Curator's `QueueSerializer`). Both
/// sides of a queue, Rust or Java, must agree on the encoding.
pub trait QueueSerializer<T>: Send + Sync + 'static {
    /// The bytes stored for `item`.
    ///
    /// # Errors
    /// `InvalidArgument` when `item` cannot be encoded; nothing is queued then.
    fn serialize(&self, item: &T) -> Result<Vec<u8>>;

    /// The item `bytes` stand for.
    ///
    /// # Errors
    /// `InvalidArgument` when `bytes` are not an item of this encoding.
    fn deserialize(&self, bytes: &[u8]) -> Result<T>;
}

/// Items that are their own bytes (`Vec<u8>` or [`Bytes`]), stored unchanged: what a Curator
/// queue with a pass-through `QueueSerializer<byte[]>` reads and writes.
#[derive(Debug, Clone, Copy, Default)]
pub struct BytesSerializer;

impl QueueSerializer<Vec<u8>> for BytesSerializer {
    fn serialize(&self, item: &Vec<u8>) -> Result<Vec<u8>> {
        Ok(item.clone())
    }

    fn deserialize(&self, bytes: &[u8]) -> Result<Vec<u8>> {
        Ok(bytes.to_vec())
    }
}

impl QueueSerializer<Bytes> for BytesSerializer {
    fn serialize(&self, item: &Bytes) -> Result<Vec<u8>> {
        Ok(item.to_vec())
    }

    fn deserialize(&self, bytes: &[u8]) -> Result<Bytes> {
        Ok(Bytes::copy_from_slice(bytes))
    }
}

/// Text items stored as their UTF-8 bytes: what a Curator queue whose serializer calls
/// `String.getBytes(UTF_8)` reads and writes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Utf8Serializer;

impl QueueSerializer<String> for Utf8Serializer {
    fn serialize(&self, item: &String) -> Result<Vec<u8>> {
        Ok(item.as_bytes().to_vec())
    }

    fn deserialize(&self, bytes: &[u8]) -> Result<String> {
        String::from_utf8(bytes.to_vec())
            .map_err(|e| Error::InvalidArgument(format!("queue item is not UTF-8: {e}")))
    }
}

/// Items stored as JSON text (serde), readable by a Java peer with any JSON library.
pub struct JsonSerializer<T>(PhantomData<fn() -> T>);

impl<T> JsonSerializer<T> {
    /// A JSON serializer for `T`.
    pub fn new() -> JsonSerializer<T> {
        JsonSerializer(PhantomData)
    }
}

impl<T> Default for JsonSerializer<T> {
    fn default() -> Self {
        JsonSerializer::new()
    }
}

impl<T> Clone for JsonSerializer<T> {
    fn clone(&self) -> Self {
        JsonSerializer::new()
    }
}

impl<T> std::fmt::Debug for JsonSerializer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JsonSerializer")
    }
}

impl<T: Serialize + DeserializeOwned + 'static> QueueSerializer<T> for JsonSerializer<T> {
    fn serialize(&self, item: &T) -> Result<Vec<u8>> {
        serde_json::to_vec(item)
            .map_err(|e| Error::InvalidArgument(format!("queue item not encodable as JSON: {e}")))
    }

    fn deserialize(&self, bytes: &[u8]) -> Result<T> {
        serde_json::from_slice(bytes).map_err(|e| {
            Error::InvalidArgument(format!("queue item is not the expected JSON: {e}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trips_and_refuses_other_text() {
        let json = JsonSerializer::<(String, u32)>::new();
        let bytes = json.serialize(&("a".to_owned(), 7)).unwrap();
        assert_eq!(bytes, br#"["a",7]"#);
        assert_eq!(json.deserialize(&bytes).unwrap(), ("a".to_owned(), 7));
        assert!(matches!(
            json.deserialize(b"not json"),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn utf8_items_are_their_bytes() {
        assert_eq!(
            Utf8Serializer.serialize(&"hé".to_owned()).unwrap(),
            "hé".as_bytes()
        );
        assert!(matches!(
            Utf8Serializer.deserialize(&[0xff]),
            Err(Error::InvalidArgument(_))
        ));
    }
}
