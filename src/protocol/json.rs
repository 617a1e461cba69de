//! JSON on the hot path: writing fragments straight into a byte buffer (the encoders of
//! every dialect build their frames with these, without an intermediate value tree), and
//! parsing client messages in place with reusable buffers.

use std::cell::RefCell;

use simd_json::BorrowedValue;

thread_local! {
    /// The shard's parse buffers (one executor per thread), reused for every message:
    /// fresh buffers cost as much as parsing a small message.
    static BUFFERS: RefCell<simd_json::Buffers> = RefCell::new(simd_json::Buffers::new(4096));
}

/// Why a client message is not taken as JSON.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    #[error("not valid JSON")]
    Malformed,
    /// An object names a key twice (after unescaping: `"fr\u006fm"` is `"from"`).
    /// Readers disagree on which value counts (the first, the last), so what the
    /// server checked could differ from what a client reads: refused.
    #[error("duplicate key {0:?}")]
    DuplicateKey(String),
}

/// Parses a client message in place (simd-json), borrowing strings from `text`;
/// refuses objects with a repeated key.
pub fn parse(text: &mut [u8]) -> Result<BorrowedValue<'_>, JsonError> {
    let value = parse_keeping_repeats(text)?;
    match repeated_key(&value) {
        Some(key) => Err(JsonError::DuplicateKey(key.to_owned())),
        None => Ok(value),
    }
}

/// Parses without the repeated-key check, for a dialect that reads part of a message
/// (its request id) before refusing it; it must call [`repeated_key`] before using the
/// rest.
pub fn parse_keeping_repeats(text: &mut [u8]) -> Result<BorrowedValue<'_>, JsonError> {
    BUFFERS
        .with_borrow_mut(|buffers| simd_json::value::borrowed::to_value_with_buffers(text, buffers))
        .map_err(|_| JsonError::Malformed)
}

/// The first key some object in `value` repeats, searching depth first. (simd-json
/// keeps an object of up to 32 keys as a list, repeats included; a larger one is a map
/// that keeps one value per key, so its repeats never reach the dialects.)
pub fn repeated_key<'v>(value: &'v BorrowedValue<'_>) -> Option<&'v str> {
    // Every client message goes through here: containers still to visit wait in a
    // small stack on the call's own frame, and only deeper nesting than it holds
    // allocates.
    let mut inline: [Option<&'v BorrowedValue<'_>>; 16] = [None; 16];
    let (mut depth, mut spilled) = (0, Vec::new());
    let mut next = Some(value);
    while let Some(value) = next {
        let mut push = |child: &'v BorrowedValue<'_>| {
            if matches!(child, BorrowedValue::Object(_) | BorrowedValue::Array(_)) {
                match inline.get_mut(depth) {
                    Some(slot) => {
                        *slot = Some(child);
                        depth += 1;
                    }
                    None => spilled.push(child),
                }
            }
        };
        match value {
            BorrowedValue::Object(object) => {
                // Small objects (nearly all) are compared pairwise; large ones through
                // a set, so a message of many keys costs linear time.
                let repeated = if object.len() <= 16 {
                    object
                        .keys()
                        .enumerate()
                        .find(|(i, key)| object.keys().take(*i).any(|k| k == *key))
                        .map(|(_, key)| key)
                } else {
                    let mut seen = ahash::AHashSet::with_capacity(object.len());
                    object.keys().find(|k| !seen.insert(&***k))
                };
                if let Some(key) = repeated {
                    return Some(key);
                }
                object.values().for_each(&mut push);
            }
            BorrowedValue::Array(items) => items.iter().for_each(&mut push),
            BorrowedValue::Static(_) | BorrowedValue::String(_) => {}
        }
        next = spilled.pop().or_else(|| {
            depth = depth.checked_sub(1)?;
            inline[depth].take()
        });
    }
    None
}

/// Appends `s` as a JSON string literal (quoted and escaped).
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    write_escaped(out, s);
    out.push(b'"');
}

/// Appends `s` JSON-escaped, without the quotes.
pub fn write_escaped(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    // Room for the text and a few escapes, so most texts grow `out` at most once.
    out.reserve(bytes.len() + bytes.len() / 8);
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape = ESCAPE[usize::from(b)];
        if escape == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        if escape == b'u' {
            write_unit_escape(out, u16::from(b));
        } else {
            out.extend_from_slice(&[b'\\', escape]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// For each byte, what follows the backslash that escapes it in a JSON string (`u` for
/// a `\uXXXX` escape); 0 for a byte written as it is.
const ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[b'\n' as usize] = b'n';
    table[b'\r' as usize] = b'r';
    table[b'\t' as usize] = b't';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

/// Appends `\uXXXX` for one UTF-16 code unit.
pub fn write_unit_escape(out: &mut Vec<u8>, unit: u16) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let hex = |shift: u16| HEX[usize::from((unit >> shift) & 0xf)];
    out.extend_from_slice(&[b'\\', b'u', hex(12), hex(8), hex(4), hex(0)]);
}

/// Appends an unsigned integer.
pub fn write_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Appends `"key":` (the key is written escaped).
pub fn write_key(out: &mut Vec<u8>, key: &str) {
    write_str(out, key);
    out.push(b':');
}

/// Appends a JSON array of strings.
pub fn write_str_array<'a>(out: &mut Vec<u8>, items: impl IntoIterator<Item = &'a str>) {
    out.push(b'[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, item);
    }
    out.push(b']');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip_through_a_json_parser() {
        for s in [
            "plain",
            "quote\" back\\slash",
            "ctl\u{1}\n\t\r",
            "üñí😀",
            "",
        ] {
            let mut out = Vec::new();
            write_str(&mut out, s);
            let parsed: String = serde_json::from_slice(&out).unwrap();
            assert_eq!(parsed, s);
        }
    }

    #[test]
    fn repeated_keys_are_refused_however_they_are_written() {
        for text in [
            r#"{"from":"A","from":"B"}"#,
            r#"{"a":[{"x":1},{"from":"A","fr\u006fm":"B"}]}"#,
        ] {
            let mut bytes = text.as_bytes().to_vec();
            let err = parse(&mut bytes).unwrap_err();
            assert!(matches!(err, JsonError::DuplicateKey(_)), "{text}: {err}");
        }
        let deep = format!("{}{{\"a\":1,\"a\":2}}{}", "[".repeat(40), "]".repeat(40));
        let wide = |n: usize| {
            let keys: String = (0..n).map(|i| format!("\"k{i}\":{i},")).collect();
            format!("{{{keys}\"k7\":0}}")
        };
        for text in [deep, wide(20)] {
            let mut bytes = text.clone().into_bytes();
            assert!(
                matches!(parse(&mut bytes), Err(JsonError::DuplicateKey(_))),
                "{text}"
            );
        }
        // Past 32 keys the parser's map keeps one value per key itself: what is checked
        // is then what is forwarded.
        let mut bytes = wide(40).into_bytes();
        let kept = simd_json::prelude::Writable::encode(&parse(&mut bytes).unwrap());
        assert_eq!(kept.matches("\"k7\"").count(), 1, "{kept}");
        let mut fine = br#"{"from":"A","data":{"from":"B"}}"#.to_vec();
        assert!(
            parse(&mut fine).is_ok(),
            "the same key in different objects"
        );
        let mut broken = b"{\"a\":".to_vec();
        assert_eq!(parse(&mut broken).unwrap_err(), JsonError::Malformed);
    }

    #[test]
    fn arrays_and_numbers() {
        let mut out = Vec::new();
        write_str_array(&mut out, ["a", "b\"c"]);
        write_u64(&mut out, 1234567890123);
        assert_eq!(out, br#"["a","b\"c"]1234567890123"#);
    }
}
