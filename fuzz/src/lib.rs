//! Checks shared by the fuzz targets in `fuzz_targets/`.
//!
//! Jute has exactly two ways of writing a value that zkwarden's encoder never produces:
//! a null (`-1`) length, which decodes as an empty string, buffer or vector and is re-encoded
//! as length 0, and a boolean byte other than 0 or 1, which decodes as `true` and is re-encoded
//! as 1. Both keep their size, so an encoding of a decoded record lines up byte for byte with
//! the input it came from; [`differs_only_canonically`] checks that every difference between
//! the two is one of those.

/// Whether `encoded` (the re-encoding of a record decoded from `input`) equals `input` except
/// where `input` held a null length (`ff ff ff ff`, re-encoded `00 00 00 00`) or a boolean
/// byte above 1 (re-encoded `01`).
///
/// With `flag_may_be_missing`, the record ends in a boolean that old peers omit (the
/// `readOnly` flag of the connect handshake): an input without it decodes as `false`, so the
/// encoding may be one `00` byte longer.
pub fn differs_only_canonically(input: &[u8], encoded: &[u8], flag_may_be_missing: bool) -> bool {
    let encoded = match encoded.split_last() {
        Some((0, head)) if flag_may_be_missing && head.len() == input.len() => head,
        _ => encoded,
    };
    if encoded.len() != input.len() {
        return false;
    }
    let mut i = 0;
    while i < input.len() {
        if input[i] == encoded[i] {
            i += 1;
        } else if input[i..].starts_with(&[0xff; 4]) && encoded[i..].starts_with(&[0; 4]) {
            i += 4;
        } else if input[i] > 1 && encoded[i] == 1 {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

/// Decodes `$input` (a `&Bytes`) as one whole `$ty` with `decode_exact`. On success checks that
/// the value re-encodes to something that decodes to the same value, that encoding is a fixed
/// point, that the encoding differs from the input only canonically (see
/// [`differs_only_canonically`]) and that `Debug` works; then evaluates to `Some(value)`.
/// A decoding error evaluates to `None`: errors are fine, panics are not.
#[macro_export]
macro_rules! round_trip {
    ($ty:ty, $input:expr) => {
        $crate::round_trip!($ty, $input, false)
    };
    ($ty:ty, $input:expr, $flag_may_be_missing:expr) => {{
        let input: &::bytes::Bytes = $input;
        match ::zkwarden::proto::jute::decode_exact::<$ty>(input) {
            Err(_) => None,
            Ok(value) => {
                let _ = format!("{value:?}");
                let encoded = ::zkwarden::proto::jute::encode_to_bytes(&value);
                let again =
                    ::zkwarden::proto::jute::decode_exact::<$ty>(&encoded).unwrap_or_else(|e| {
                        panic!("{}: re-encoded value does not decode: {e}", stringify!($ty))
                    });
                assert_eq!(again, value, "{}: decode(encode(x)) != x", stringify!($ty));
                assert_eq!(
                    ::zkwarden::proto::jute::encode_to_bytes(&again),
                    encoded,
                    "{}: encoding is not a fixed point",
                    stringify!($ty)
                );
                assert!(
                    $crate::differs_only_canonically(input, &encoded, $flag_may_be_missing),
                    "{}: re-encoding differs from the input beyond null lengths and booleans\n \
                     input   {:02x?}\n encoded {:02x?}",
                    stringify!($ty),
                    &input[..],
                    &encoded[..],
                );
                Some(value)
            }
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::differs_only_canonically;

    #[test]
    fn accepts_only_null_lengths_and_wide_booleans() {
        assert!(differs_only_canonically(&[1, 2, 3], &[1, 2, 3], false));
        assert!(differs_only_canonically(&[0xff; 4], &[0; 4], false));
        assert!(differs_only_canonically(
            &[7, 0xff, 0xff, 0xff, 0xff, 9],
            &[7, 0, 0, 0, 0, 9],
            false
        ));
        assert!(differs_only_canonically(&[0x80], &[1], false));
        assert!(!differs_only_canonically(&[0], &[1], false));
        assert!(!differs_only_canonically(&[1], &[0], false));
        assert!(!differs_only_canonically(
            &[0xff, 0xff, 0xff],
            &[0, 0, 0],
            false
        ));
        assert!(!differs_only_canonically(&[1, 2], &[1, 2, 0], false));
        assert!(differs_only_canonically(&[1, 2], &[1, 2, 0], true));
        assert!(!differs_only_canonically(&[1, 2], &[1, 2, 1], true));
    }
}
