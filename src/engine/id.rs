//! The one rule for ids — users, channels, rooms, documents, worlds — whichever dialect
//! or token names them, and the random ids the server makes (socket and game ids).

use std::cell::Cell;

/// The longest id accepted, in bytes.
pub const MAX_ID_LEN: usize = 256;

/// Why a string is not an id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("an id must not be empty")]
    Empty,
    #[error("an id must be at most {MAX_ID_LEN} bytes")]
    TooLong,
    #[error("an id must not contain control characters")]
    ControlCharacter,
}

/// Checks `id` against the rule: 1 to [`MAX_ID_LEN`] bytes, no control characters
/// (they would reach logs, keys and other clients' screens).
pub fn check(id: &str) -> Result<(), IdError> {
    if id.is_empty() {
        return Err(IdError::Empty);
    }
    if id.len() > MAX_ID_LEN {
        return Err(IdError::TooLong);
    }
    if id.chars().any(char::is_control) {
        return Err(IdError::ControlCharacter);
    }
    Ok(())
}

/// Whether `id` follows the rule (see [`check`]).
pub fn is_valid(id: &str) -> bool {
    check(id).is_ok()
}

/// A fresh 20-character id in the URL-safe base64 alphabet (SocketCluster's socket ids
/// look so), from 15 random bytes: a per-thread counter hashed with the process's random
/// hash keys (unique, and not guessable from other ids).
pub fn random_id() -> Box<str> {
    to_base64(random_bytes())
}

fn random_bytes() -> [u8; 15] {
    thread_local! {
        static KEYS: ahash::RandomState = ahash::RandomState::new();
        static COUNTER: Cell<u64> = const { Cell::new(0) };
    }
    let n = COUNTER.with(|c| {
        c.set(c.get() + 1);
        c.get()
    });
    let thread = std::thread::current().id();
    let (a, b) = KEYS.with(|k| (k.hash_one((thread, n, 0u8)), k.hash_one((thread, n, 1u8))));
    let mut random = [0u8; 15];
    random[..8].copy_from_slice(&a.to_le_bytes());
    random[8..].copy_from_slice(&b.to_le_bytes()[..7]);
    random
}

fn to_base64(bytes: [u8; 15]) -> Box<str> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut id = String::with_capacity(20);
    for chunk in bytes.chunks(3) {
        let n = u32::from(chunk[0]) << 16 | u32::from(chunk[1]) << 8 | u32::from(chunk[2]);
        for shift in [18, 12, 6, 0] {
            id.push(char::from(ALPHABET[(n >> shift) as usize & 63]));
        }
    }
    id.into_boxed_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule() {
        assert_eq!(check("ada"), Ok(()));
        assert_eq!(check("b\"é"), Ok(()));
        assert_eq!(check(""), Err(IdError::Empty));
        assert_eq!(check(&"x".repeat(MAX_ID_LEN)), Ok(()));
        assert_eq!(check(&"x".repeat(MAX_ID_LEN + 1)), Err(IdError::TooLong));
        assert_eq!(check("a\nb"), Err(IdError::ControlCharacter));
        assert_eq!(check("a\u{7f}"), Err(IdError::ControlCharacter));
    }

    #[test]
    fn random_ids_differ_and_are_urlsafe() {
        let (a, b) = (random_id(), random_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 20);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_eq!(&*to_base64([0xff; 15]), "____________________");
    }
}
