//! SockJS framing, as sockjs-node 0.3.24 writes it: a transport around a dialect, not a
//! dialect. The server sends `o` (open), `h` (heartbeat), `a[...]` (messages, each a
//! dialect's text as a JSON string) and `c[code,"reason"]` (close); a client sends a
//! JSON array of strings (or one JSON value) per frame.
//!
//! Strings are escaped as sockjs-node's `quote` does: JSON, plus `\uXXXX` (lowercase)
//! for the code units some browsers mangle — U+200C–200F, U+2028–202F, U+2060–206F,
//! U+FFF0–FFFF and every surrogate (so astral characters go out as escaped pairs).

use std::time::Duration;

use serde_json::Value;

use super::close::CloseReason;
use super::contract::{Keepalive, Settings};
use super::json::{write_escaped, write_str, write_unit_escape};

/// The open frame.
pub const OPEN: &[u8] = b"o";
/// The heartbeat frame.
pub const HEARTBEAT: &[u8] = b"h";

/// A client frame that is not a JSON array of strings: the session ends with the
/// WebSocket close alone, as sockjs-node does.
pub const BROKEN_FRAMING: CloseReason = CloseReason::new(3000, "Broken framing.");

/// How long a SockJS WebSocket client has to answer a heartbeat ping.
const PONG_WAIT: Duration = Duration::from_secs(10);

/// The keepalive of a SockJS session over a WebSocket, whatever its dialect: as
/// sockjs-node, a WebSocket ping after each heartbeat interval of silence, and no answer
/// within [`PONG_WAIT`] after it ends the session. (Sessions over HTTP end by their own
/// timer.)
pub fn keepalive(settings: &Settings) -> Keepalive {
    Keepalive {
        ping_after: Some(settings.sockjs_heartbeat_interval),
        close_after: Some((
            settings.sockjs_heartbeat_interval + PONG_WAIT,
            CloseReason::new(3000, "No response from heartbeat"),
        )),
        beat: None,
    }
}

/// Appends `a["<message>"]`: one dialect message as a SockJS message frame.
pub fn write_message(out: &mut Vec<u8>, message: &[u8]) {
    out.extend_from_slice(b"a[");
    quote(out, &String::from_utf8_lossy(message));
    out.push(b']');
}

/// Appends `c[code,"reason"]`.
pub fn write_close(out: &mut Vec<u8>, code: u16, reason: &str) {
    out.extend_from_slice(b"c[");
    out.extend_from_slice(itoa::Buffer::new().format(code).as_bytes());
    out.push(b',');
    write_str(out, reason);
    out.push(b']');
}

/// Appends `s` as sockjs-node's `quote` writes it (see the module doc).
pub fn quote(out: &mut Vec<u8>, s: &str) {
    // Every character `needs_escape` picks is encoded with a lead byte of 0xE2 (U+2000
    // to U+2FFF), 0xEF (U+F000 to U+FFFF) or 0xF0 and up (astral): a text without those
    // bytes, which is most, needs no character scan.
    let may_need = |b: &u8| *b == 0xe2 || *b >= 0xef;
    if !s.as_bytes().iter().any(may_need) {
        return write_str(out, s);
    }
    out.push(b'"');
    let mut plain_from = 0;
    for (at, c) in s.char_indices().filter(|(_, c)| needs_escape(*c)) {
        write_escaped(out, &s[plain_from..at]);
        let mut units = [0u16; 2];
        for unit in c.encode_utf16(&mut units) {
            write_unit_escape(out, *unit);
        }
        plain_from = at + c.len_utf8();
    }
    write_escaped(out, &s[plain_from..]);
    out.push(b'"');
}

fn needs_escape(c: char) -> bool {
    matches!(c as u32,
        0x200c..=0x200f | 0x2028..=0x202f | 0x2060..=0x206f | 0xfff0..=0xffff | 0x10000..)
}

/// Why a client frame was refused: the connection closes with 3000 "Broken framing.".
#[derive(Debug, PartialEq, Eq)]
pub struct BrokenFraming;

/// The messages of one client frame: each element of a JSON array (strings as they are,
/// other values as their JSON text), or the one JSON value; an empty frame is none.
pub fn parse_client_frame(text: &[u8]) -> Result<Vec<String>, BrokenFraming> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let as_message = |v: Value| match v {
        Value::String(s) => s,
        other => other.to_string(),
    };
    match serde_json::from_slice(text).map_err(|_| BrokenFraming)? {
        Value::Array(items) => Ok(items.into_iter().map(as_message).collect()),
        one => Ok(vec![as_message(one)]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quoted(s: &str) -> String {
        let mut out = Vec::new();
        quote(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn quotes_as_sockjs_node_does() {
        assert_eq!(quoted("plain é中 /"), r#""plain é中 /""#);
        assert_eq!(quoted("a\"b\n"), r#""a\"b\n""#);
        assert_eq!(quoted("\u{2028}x\u{fffd}"), r#""\u2028x\ufffd""#);
        assert_eq!(quoted("😀"), r#""\ud83d\ude00""#);
        assert_eq!(quoted("a\"\u{2028}\\"), r#""a\"\u2028\\""#);
        assert_eq!(quoted("\u{200b}\u{200c}"), "\"\u{200b}\\u200c\"");
    }

    #[test]
    fn frames_are_written_whole() {
        let mut out = Vec::new();
        write_message(&mut out, br#"{"command":"idyou","data":{}}"#);
        assert_eq!(out, br#"a["{\"command\":\"idyou\",\"data\":{}}"]"#);
        let mut out = Vec::new();
        write_close(&mut out, 3000, "Go away!");
        assert_eq!(out, br#"c[3000,"Go away!"]"#);
    }

    #[test]
    fn client_frames_are_arrays_or_one_value() {
        assert_eq!(
            parse_client_frame(br#"["a","b"]"#),
            Ok(vec!["a".into(), "b".into()])
        );
        assert_eq!(parse_client_frame(br#""x""#), Ok(vec!["x".into()]));
        assert_eq!(
            parse_client_frame(b"[1,{}]"),
            Ok(vec!["1".into(), "{}".into()])
        );
        assert_eq!(parse_client_frame(b"[]"), Ok(vec![]));
        assert_eq!(parse_client_frame(b""), Ok(vec![]));
        assert_eq!(parse_client_frame(b"[\"a\""), Err(BrokenFraming));
    }
}
