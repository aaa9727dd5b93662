//! The bytes of one queue node, in Apache Curator's format (its `ItemSerializer`): a 4-byte
//! big-endian version `0x00010001`, then per item the opcode `0x01`, a 4-byte big-endian length
//! and the item's bytes, and finally the opcode `0x02`. A single `put` writes one item; a
//! node from Curator's `putMulti` holds several, and both are read here.

use bytes::{Buf, Bytes};

/// The format version Curator writes first.
const VERSION: u32 = 0x0001_0001;
/// Opcode before each item.
const ITEM: u8 = 0x01;
/// Opcode after the last item.
const END: u8 = 0x02;

/// The node data for `items` (each already serialized).
pub(crate) fn encode(items: &[Vec<u8>]) -> Vec<u8> {
    let len = 5 + items.iter().map(|i| 5 + i.len()).sum::<usize>();
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&VERSION.to_be_bytes());
    for item in items {
        out.push(ITEM);
        // Curator writes a Java int: a node is far below 2 GiB (the frame limit sees to it).
        let n = u32::try_from(item.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(item);
    }
    out.push(END);
    out
}

/// The serialized items in node data; `Err` says what is wrong with it. Bytes after the end
/// opcode are ignored, as Curator does.
pub(crate) fn decode(data: &Bytes) -> Result<Vec<Bytes>, String> {
    let mut rest = data.clone();
    if rest.remaining() < 4 {
        return Err(format!("{} bytes: no format version", data.len()));
    }
    let version = rest.get_u32();
    if version != VERSION {
        return Err(format!("format version {version:#x}, not {VERSION:#x}"));
    }
    let mut items = Vec::new();
    loop {
        if !rest.has_remaining() {
            return Err("the end marker is missing".to_owned());
        }
        match rest.get_u8() {
            END => return Ok(items),
            ITEM => {}
            other => {
                return Err(format!(
                    "opcode {other:#x} where an item or the end belongs"
                ));
            }
        }
        if rest.remaining() < 4 {
            return Err("an item's length is cut off".to_owned());
        }
        let len = rest.get_i32();
        let len = usize::try_from(len).map_err(|_| format!("item length {len}"))?;
        if rest.remaining() < len {
            return Err(format!(
                "an item of {len} bytes has {} left",
                rest.remaining()
            ));
        }
        items.push(rest.split_to(len));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_item_is_laid_out_as_curator_writes_it() {
        let data = encode(&[b"hi".to_vec()]);
        assert_eq!(data, [0, 1, 0, 1, 1, 0, 0, 0, 2, b'h', b'i', 2]);
        assert_eq!(
            decode(&Bytes::from(data)).unwrap(),
            [Bytes::from_static(b"hi")]
        );
    }

    #[test]
    fn several_and_empty_items_round_trip() {
        let items = vec![Vec::new(), b"a".to_vec(), vec![0; 300]];
        let decoded = decode(&Bytes::from(encode(&items))).unwrap();
        assert_eq!(
            decoded.iter().map(|b| b.to_vec()).collect::<Vec<_>>(),
            items
        );
        assert!(decode(&Bytes::from(encode(&[]))).unwrap().is_empty());
    }

    #[test]
    fn damaged_data_is_refused() {
        for bad in [
            &b""[..],
            &[0, 1, 0, 2, 2],
            &[0, 1, 0, 1],
            &[0, 1, 0, 1, 7],
            &[0, 1, 0, 1, 1, 0, 0],
            &[0, 1, 0, 1, 1, 0, 0, 0, 5, 1, 2],
            &[0, 1, 0, 1, 1, 0xff, 0xff, 0xff, 0xff, 2],
        ] {
            assert!(decode(&Bytes::copy_from_slice(bad)).is_err(), "{bad:?}");
        }
    }
}
