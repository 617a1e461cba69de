//! The WebSocket frame decoder (`net::ws::Decoder`). The first byte picks the role, the
//! message limit and a read size; the rest is the peer's bytes. Checked: decoding never
//! panics nor consumes more than it was given, a text message is UTF-8, the bytes read
//! in small pieces (as a socket hands them over) decode as they do all at once, and
//! every message decoded, encoded again, decodes to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use turntable::net::ws::{self, DecodeError, Decoder, Flow, Message, Opcode, Role};

/// A message as decoded, owned.
#[derive(Debug, PartialEq, Eq)]
enum Owned {
    Text(Vec<u8>),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<(u16, String)>),
}

/// Decodes `bytes` read `piece` bytes at a time, as the connection does: what was
/// consumed leaves the buffer, the rest waits for more. Stops at the first error.
fn decode(role: Role, max: usize, bytes: &[u8], piece: usize) -> (Vec<Owned>, Option<DecodeError>) {
    let mut decoder = Decoder::new(role, max);
    let mut messages = Vec::new();
    let mut buf = Vec::new();
    for chunk in bytes.chunks(piece.max(1)) {
        buf.extend_from_slice(chunk);
        let result = decoder.decode(&mut buf, |message| {
            messages.push(match message {
                Message::Text(t) => {
                    assert!(std::str::from_utf8(t).is_ok(), "text not UTF-8");
                    Owned::Text(t.to_vec())
                }
                Message::Binary(b) => Owned::Binary(b.to_vec()),
                Message::Ping(p) => Owned::Ping(p.to_vec()),
                Message::Pong(p) => Owned::Pong(p.to_vec()),
                Message::Close(c) => Owned::Close(c.map(|(code, r)| (code, r.to_owned()))),
            });
            Flow::Continue
        });
        match result {
            Ok(used) => {
                assert!(used <= buf.len());
                buf.drain(..used);
            }
            Err(e) => return (messages, Some(e)),
        }
    }
    (messages, None)
}

/// The messages as one peer in `role` would send them to the other.
fn encode(messages: &[Owned], role: Role) -> Vec<u8> {
    let mask = (role == Role::Client).then_some([0x37, 0xfa, 0x21, 0x3d]);
    let mut out = Vec::new();
    for message in messages {
        match message {
            Owned::Text(p) => ws::encode_frame(&mut out, Opcode::Text, p, mask),
            Owned::Binary(p) => ws::encode_frame(&mut out, Opcode::Binary, p, mask),
            Owned::Ping(p) => ws::encode_frame(&mut out, Opcode::Ping, p, mask),
            Owned::Pong(p) => ws::encode_frame(&mut out, Opcode::Pong, p, mask),
            Owned::Close(Some((code, reason))) => ws::encode_close(&mut out, *code, reason, mask),
            Owned::Close(None) => ws::encode_frame(&mut out, Opcode::Close, &[], mask),
        }
    }
    out
}

fuzz_target!(|input: &[u8]| {
    let Some((&control, bytes)) = input.split_first() else {
        return;
    };
    let role = if control & 1 == 0 {
        Role::Server
    } else {
        Role::Client
    };
    let max = [125, 1 << 10, 1 << 20][usize::from(control >> 1 & 3) % 3];
    let piece = usize::from(control >> 3) + 1;
    let whole = decode(role, max, bytes, bytes.len());
    assert_eq!(
        whole,
        decode(role, max, bytes, piece),
        "read in {piece}-byte pieces"
    );
    // What the peer sent, sent again by a well-behaved peer.
    let peer = if role == Role::Server {
        Role::Client
    } else {
        Role::Server
    };
    let again = encode(&whole.0, peer);
    assert_eq!(decode(role, max, &again, again.len()), (whole.0, None));
});
