//! Jute, ZooKeeper's binary record encoding: big-endian integers, one-byte booleans, strings and
//! buffers prefixed by an `i32` length (`-1` meaning null), vectors prefixed by an `i32` count.
//!
//! Decoding never panics: every read checks the remaining input first and reports a
//! [`DecodeError`] instead.

use std::borrow::Cow;

use bytes::{BufMut, Bytes, BytesMut};

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended before the record did.
    #[error("record truncated: needed {needed} more bytes, {available} left")]
    Truncated {
        /// Bytes the next field needed.
        needed: usize,
        /// Bytes that were left.
        available: usize,
    },
    /// A length or count prefix was negative (other than the null marker) or absurd.
    #[error("invalid length {0} in record")]
    InvalidLength(i32),
    /// A string field did not hold UTF-8.
    #[error("string field is not valid UTF-8")]
    InvalidUtf8,
    /// A field held a value the protocol does not define.
    #[error("unknown {what} value {value}")]
    UnknownValue {
        /// The kind of field.
        what: &'static str,
        /// The value that was read.
        value: i64,
    },
    /// Bytes were left over after a record that should have filled its frame.
    #[error("{0} unexpected trailing bytes after record")]
    TrailingBytes(usize),
}

/// A cursor over a received frame. Strings and buffers can be borrowed from it or, for
/// [`Bytes`], sliced from it without copying.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    frame: &'a Bytes,
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at the beginning of `frame`.
    pub fn new(frame: &'a Bytes) -> Self {
        Reader { frame, pos: 0 }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.frame.len() - self.pos
    }

    /// How many bytes have been read so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Fails with [`DecodeError::TrailingBytes`] unless the whole frame was consumed.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let available = self.remaining();
        if n > available {
            return Err(DecodeError::Truncated {
                needed: n,
                available,
            });
        }
        let frame: &'a Bytes = self.frame;
        let slice = &frame[self.pos..self.pos + n];
        self.pos += n;
        Ok(slice)
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// Reads a big-endian `i32`.
    pub fn read_i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.take_array()?))
    }

    /// Reads a big-endian `i64`.
    pub fn read_i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.take_array()?))
    }

    /// Reads a one-byte boolean (any non-zero byte is true, as in Java's reader).
    pub fn read_bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.take(1)?[0] != 0)
    }

    /// Reads a length prefix; `-1` (null) reads as zero.
    fn read_len(&mut self) -> Result<usize, DecodeError> {
        let len = self.read_i32()?;
        match len {
            -1 => Ok(0),
            n if n < 0 => Err(DecodeError::InvalidLength(n)),
            n => Ok(n as usize),
        }
    }

    /// Reads a count prefix for a vector; a count larger than the bytes left cannot be honest
    /// (every element takes at least one byte) and is rejected before anything is allocated.
    pub fn read_count(&mut self) -> Result<usize, DecodeError> {
        let count = self.read_len()?;
        if count > self.remaining() {
            return Err(DecodeError::InvalidLength(count as i32));
        }
        Ok(count)
    }

    /// Reads a buffer as a slice of the frame.
    pub fn read_slice(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.read_len()?;
        self.take(len)
    }

    /// Reads a buffer as [`Bytes`] sharing the frame's memory.
    pub fn read_bytes(&mut self) -> Result<Bytes, DecodeError> {
        let len = self.read_len()?;
        let start = self.pos;
        self.take(len)?;
        Ok(self.frame.slice(start..start + len))
    }

    /// Reads a string borrowed from the frame.
    pub fn read_str(&mut self) -> Result<&'a str, DecodeError> {
        let raw = self.read_slice()?;
        std::str::from_utf8(raw).map_err(|_| DecodeError::InvalidUtf8)
    }

    /// Reads a string that may be null (length `-1`), as `None`.
    pub fn read_opt_str(&mut self) -> Result<Option<&'a str>, DecodeError> {
        let rest = self.frame.get(self.pos..self.pos + 4);
        if rest == Some(&(-1i32).to_be_bytes()[..]) {
            self.pos += 4;
            return Ok(None);
        }
        self.read_str().map(Some)
    }
}

/// Writes a big-endian `i32`.
pub fn write_i32(buf: &mut BytesMut, v: i32) {
    buf.put_i32(v);
}

/// Writes a big-endian `i64`.
pub fn write_i64(buf: &mut BytesMut, v: i64) {
    buf.put_i64(v);
}

/// Writes a one-byte boolean.
pub fn write_bool(buf: &mut BytesMut, v: bool) {
    buf.put_u8(u8::from(v));
}

/// Writes a length-prefixed buffer.
pub fn write_slice(buf: &mut BytesMut, v: &[u8]) {
    // Lengths beyond i32 cannot be framed; callers check sizes against the frame limit first.
    buf.put_i32(v.len() as i32);
    buf.put_slice(v);
}

/// Writes a length-prefixed UTF-8 string.
pub fn write_str(buf: &mut BytesMut, v: &str) {
    write_slice(buf, v.as_bytes());
}

/// A value with a jute encoding. `'a` is the lifetime of the frame a decoded value may borrow
/// from; owned types implement the trait for every `'a`.
pub trait Jute<'a>: Sized {
    /// Appends the encoding of `self` to `buf`.
    fn write(&self, buf: &mut BytesMut);
    /// Reads one value from `r`.
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError>;
}

impl<'a> Jute<'a> for i32 {
    fn write(&self, buf: &mut BytesMut) {
        write_i32(buf, *self)
    }
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        r.read_i32()
    }
}

impl<'a> Jute<'a> for i64 {
    fn write(&self, buf: &mut BytesMut) {
        write_i64(buf, *self)
    }
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        r.read_i64()
    }
}

impl<'a> Jute<'a> for bool {
    fn write(&self, buf: &mut BytesMut) {
        write_bool(buf, *self)
    }
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        r.read_bool()
    }
}

impl<'a> Jute<'a> for &'a str {
    fn write(&self, buf: &mut BytesMut) {
        write_str(buf, self)
    }
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        r.read_str()
    }
}

/// A string Java may leave null: `None` is written as length `-1`, which a server tells apart
/// from an empty string (a reconfig's absent member lists).
impl<'a> Jute<'a> for Option<&'a str> {
    fn write(&self, buf: &mut BytesMut) {
        match self {
            Some(v) => write_str(buf, v),
            None => write_i32(buf, -1),
        }
    }
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        r.read_opt_str()
    }
}

impl<'a> Jute<'a> for String {
    fn write(&self, buf: &mut BytesMut) {
        write_str(buf, self)
    }
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        r.read_str().map(str::to_owned)
    }
}

/// Owned on decode, so records holding constants (such as `world:anyone`) stay `'static`.
impl<'a> Jute<'a> for Cow<'static, str> {
    fn write(&self, buf: &mut BytesMut) {
        write_str(buf, self)
    }
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        r.read_str().map(|s| Cow::Owned(s.to_owned()))
    }
}

impl<'a> Jute<'a> for &'a [u8] {
    fn write(&self, buf: &mut BytesMut) {
        write_slice(buf, self)
    }
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        r.read_slice()
    }
}

impl<'a> Jute<'a> for Bytes {
    fn write(&self, buf: &mut BytesMut) {
        write_slice(buf, self)
    }
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        r.read_bytes()
    }
}

impl<'a, T: Jute<'a>> Jute<'a> for Vec<T> {
    fn write(&self, buf: &mut BytesMut) {
        write_seq(buf, self)
    }
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let count = r.read_count()?;
        // The count is bounded by the bytes left, but elements are larger than a byte: do not
        // let a hostile count reserve more than a modest amount up front.
        let mut out = Vec::with_capacity(count.min(1024));
        for _ in 0..count {
            out.push(T::read(r)?);
        }
        Ok(out)
    }
}

impl<'a, T> Jute<'a> for Cow<'a, [T]>
where
    T: Jute<'a> + Clone,
{
    fn write(&self, buf: &mut BytesMut) {
        write_seq(buf, self)
    }
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Vec::<T>::read(r).map(Cow::Owned)
    }
}

/// Writes a count-prefixed vector.
pub fn write_seq<'a, T: Jute<'a>>(buf: &mut BytesMut, items: &[T]) {
    buf.put_i32(items.len() as i32);
    for item in items {
        item.write(buf);
    }
}

/// Decodes one `T` that must fill `frame` exactly.
pub fn decode_exact<'a, T: Jute<'a>>(frame: &'a Bytes) -> Result<T, DecodeError> {
    let mut r = Reader::new(frame);
    let value = T::read(&mut r)?;
    r.finish()?;
    Ok(value)
}

/// Encodes a value into a fresh buffer (convenient in tests; the client encodes in place).
pub fn encode_to_bytes<'a, T: Jute<'a>>(value: &T) -> Bytes {
    let mut buf = BytesMut::new();
    value.write(&mut buf);
    buf.freeze()
}

/// Declares a jute record: a struct whose fields are encoded in declaration order.
macro_rules! jute_record {
    (
        $(#[$meta:meta])*
        pub struct $name:ident <$lt:lifetime> {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $name<$lt> {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }
        impl<$lt> $crate::proto::jute::Jute<$lt> for $name<$lt> {
            fn write(&self, buf: &mut ::bytes::BytesMut) {
                $( $crate::proto::jute::Jute::write(&self.$field, buf); )*
            }
            fn read(
                r: &mut $crate::proto::jute::Reader<$lt>,
            ) -> Result<Self, $crate::proto::jute::DecodeError> {
                Ok(Self { $( $field: $crate::proto::jute::Jute::read(r)?, )* })
            }
        }
    };
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }
        impl<'a> $crate::proto::jute::Jute<'a> for $name {
            fn write(&self, buf: &mut ::bytes::BytesMut) {
                $( $crate::proto::jute::Jute::write(&self.$field, buf); )*
            }
            fn read(
                r: &mut $crate::proto::jute::Reader<'a>,
            ) -> Result<Self, $crate::proto::jute::DecodeError> {
                Ok(Self { $( $field: $crate::proto::jute::Jute::read(r)?, )* })
            }
        }
    };
}
pub(crate) use jute_record;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let frame = Bytes::from_static(&[0, 0, 0]);
        let mut r = Reader::new(&frame);
        assert_eq!(
            r.read_i32(),
            Err(DecodeError::Truncated {
                needed: 4,
                available: 3
            })
        );
    }

    #[test]
    fn an_optional_string_tells_null_from_empty() {
        let mut buf = BytesMut::new();
        None::<&str>.write(&mut buf);
        Some("").write(&mut buf);
        Some("ab").write(&mut buf);
        assert_eq!(&buf[..4], &(-1i32).to_be_bytes());
        let frame = buf.freeze();
        let mut r = Reader::new(&frame);
        assert_eq!(Option::<&str>::read(&mut r), Ok(None));
        assert_eq!(Option::<&str>::read(&mut r), Ok(Some("")));
        assert_eq!(Option::<&str>::read(&mut r), Ok(Some("ab")));
        assert_eq!(r.remaining(), 0);
        // A length prefix cut short is still an error, not a null.
        let short = Bytes::from_static(&[0xff, 0xff]);
        assert!(Option::<&str>::read(&mut Reader::new(&short)).is_err());
    }

    #[test]
    fn null_string_reads_as_empty() {
        let frame = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(decode_exact::<String>(&frame), Ok(String::new()));
    }

    #[test]
    fn negative_length_is_rejected() {
        let frame = Bytes::from_static(&[0xff, 0xff, 0xff, 0xfe]);
        assert_eq!(
            decode_exact::<Bytes>(&frame),
            Err(DecodeError::InvalidLength(-2))
        );
    }

    #[test]
    fn huge_vector_count_is_rejected_before_allocating() {
        let frame = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 0, 0]);
        assert_eq!(
            decode_exact::<Vec<i32>>(&frame),
            Err(DecodeError::InvalidLength(i32::MAX))
        );
    }

    #[test]
    fn buffers_are_sliced_without_copying() {
        let frame = Bytes::from_static(&[0, 0, 0, 2, b'h', b'i']);
        let data: Bytes = decode_exact(&frame).unwrap();
        assert_eq!(&data[..], b"hi");
        assert_eq!(data.as_ptr(), frame[4..].as_ptr());
    }

    #[test]
    fn invalid_utf8_is_rejected() {
        let frame = Bytes::from_static(&[0, 0, 0, 1, 0xff]);
        assert_eq!(
            decode_exact::<String>(&frame),
            Err(DecodeError::InvalidUtf8)
        );
    }
}
