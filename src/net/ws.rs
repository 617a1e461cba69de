//! The WebSocket framing layer (RFC 6455), sans-IO: a decoder that turns bytes into
//! messages in place and encoders that write frames into a buffer.
//!
//! Why not `tungstenite::WebSocket`: it owns the stream and copies every payload into a
//! fresh `Vec`. Here a single-frame message (nearly all realtime traffic) is unmasked
//! and handed to the dialect inside the shard's read buffer, and an outgoing frame is
//! encoded once and shared by every connection that receives it. tungstenite still
//! supplies the pieces it gets right once: the accept-key derivation and the table of
//! close codes.

use tungstenite::handshake::derive_accept_key;
use tungstenite::protocol::frame::coding::CloseCode;

/// Which end of the connection this codec speaks for: clients mask, servers do not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Server,
    Client,
}

/// Frame opcodes defined by RFC 6455 section 5.2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opcode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl Opcode {
    fn from_bits(bits: u8) -> Option<Self> {
        Some(match bits {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xA => Opcode::Pong,
            _ => return None,
        })
    }

    fn bits(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }

    fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }
}

/// One complete message as the application sees it. Data payloads are mutable so a
/// dialect can parse JSON in place (simd-json rewrites its input).
#[derive(Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// Valid UTF-8, checked by the decoder.
    Text(&'a mut [u8]),
    Binary(&'a mut [u8]),
    Ping(&'a [u8]),
    Pong(&'a [u8]),
    /// The peer's close code and reason, if it sent one.
    Close(Option<(u16, &'a str)>),
}

/// Why a peer's bytes cannot be accepted; each maps to the close code RFC 6455 asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// A framing rule was broken (close 1002).
    Protocol(&'static str),
    /// A text message or close reason is not UTF-8 (close 1007).
    InvalidUtf8,
    /// A message exceeds the configured maximum (close 1009).
    TooBig,
}

impl DecodeError {
    /// The close code to send the peer.
    pub fn close_code(self) -> u16 {
        match self {
            DecodeError::Protocol(_) => 1002,
            DecodeError::InvalidUtf8 => 1007,
            DecodeError::TooBig => 1009,
        }
    }

    /// The close reason to send the peer.
    pub fn reason(self) -> &'static str {
        match self {
            DecodeError::Protocol(reason) => reason,
            DecodeError::InvalidUtf8 => "invalid utf-8",
            DecodeError::TooBig => "message too big",
        }
    }
}

/// What the message callback wants next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// Stop decoding after this message (the bytes after it stay unconsumed).
    Stop,
}

/// A fragmented message being assembled from its frames.
#[derive(Debug)]
struct Fragments {
    text: bool,
    payload: Vec<u8>,
    /// How much of `payload` is known to be valid UTF-8 (text only); what follows is
    /// at most an incomplete code point.
    utf8_checked: usize,
}

/// Incremental frame decoder for one connection.
///
/// Only whole frames are consumed, so the caller keeps at most one partial frame;
/// state carried between calls is just the fragmented message in progress.
#[derive(Debug)]
pub struct Decoder {
    role: Role,
    max_message: usize,
    fragments: Option<Fragments>,
}

impl Decoder {
    /// A decoder refusing messages longer than `max_message` bytes.
    pub fn new(role: Role, max_message: usize) -> Self {
        Decoder {
            role,
            max_message,
            fragments: None,
        }
    }

    /// Decodes every complete frame at the start of `buf`, calling `on_message` for each
    /// complete message, and returns how many bytes were consumed. Payloads are unmasked
    /// in place. After an error the connection must be closed; nothing more is decoded.
    pub fn decode<F>(&mut self, buf: &mut [u8], mut on_message: F) -> Result<usize, DecodeError>
    where
        F: FnMut(Message<'_>) -> Flow,
    {
        let mut pos = 0;
        while let Some(header) = self.parse_header(&buf[pos..])? {
            let start = pos + header.header_len;
            let end = start + header.payload_len;
            pos = end;
            let payload = &mut buf[start..end];
            if let Some(mask) = header.mask {
                apply_mask(payload, mask);
            }
            let flow = if header.opcode.is_control() {
                control_message(header.opcode, payload).map(&mut on_message)?
            } else {
                match self.data_frame(header.opcode, header.fin, payload)? {
                    DataFrame::Partial => Flow::Continue,
                    DataFrame::Whole { text } => on_message(if text {
                        Message::Text(payload)
                    } else {
                        Message::Binary(payload)
                    }),
                    DataFrame::Assembled => self.deliver_fragments(&mut on_message),
                }
            };
            if flow == Flow::Stop {
                break;
            }
        }
        Ok(pos)
    }

    /// Parses and checks one frame header; `None` until the whole frame is buffered.
    fn parse_header(&self, buf: &[u8]) -> Result<Option<Header>, DecodeError> {
        if buf.len() < 2 {
            return Ok(None);
        }
        let (b0, b1) = (buf[0], buf[1]);
        if b0 & 0x70 != 0 {
            return Err(DecodeError::Protocol("reserved bits set"));
        }
        let opcode =
            Opcode::from_bits(b0 & 0x0F).ok_or(DecodeError::Protocol("reserved opcode"))?;
        let fin = b0 & 0x80 != 0;
        let masked = b1 & 0x80 != 0;
        match (self.role, masked) {
            (Role::Server, false) => return Err(DecodeError::Protocol("client frame not masked")),
            (Role::Client, true) => return Err(DecodeError::Protocol("server frame masked")),
            _ => {}
        }
        let (len, mut header_len) = match b1 & 0x7F {
            126 => match buf.get(2..4) {
                Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
                None => return Ok(None),
            },
            127 => match buf.get(2..10) {
                Some(b) => (u64::from_be_bytes(b.try_into().expect("8 bytes")), 10),
                None => return Ok(None),
            },
            short => (u64::from(short), 2),
        };
        if opcode.is_control() {
            if !fin {
                return Err(DecodeError::Protocol("fragmented control frame"));
            }
            if len > 125 {
                return Err(DecodeError::Protocol("control frame too long"));
            }
        } else {
            self.check_sequence(opcode)?;
            let so_far = self
                .fragments
                .as_ref()
                .map_or(0, |f| f.payload.len() as u64);
            if len.saturating_add(so_far) > self.max_message as u64 {
                return Err(DecodeError::TooBig);
            }
        }
        let mask = if masked {
            match buf.get(header_len..header_len + 4) {
                Some(b) => {
                    header_len += 4;
                    Some([b[0], b[1], b[2], b[3]])
                }
                None => return Ok(None),
            }
        } else {
            None
        };
        let payload_len = len as usize;
        if buf.len() - header_len < payload_len {
            return Ok(None);
        }
        Ok(Some(Header {
            fin,
            opcode,
            mask,
            header_len,
            payload_len,
        }))
    }

    /// Data frames must start a message or continue the one in progress.
    fn check_sequence(&self, opcode: Opcode) -> Result<(), DecodeError> {
        match (opcode, self.fragments.is_some()) {
            (Opcode::Continuation, false) => {
                Err(DecodeError::Protocol("continuation without a message"))
            }
            (Opcode::Text | Opcode::Binary, true) => Err(DecodeError::Protocol(
                "new message before the last one finished",
            )),
            _ => Ok(()),
        }
    }

    /// Accounts for one data frame whose payload is already unmasked.
    fn data_frame(
        &mut self,
        opcode: Opcode,
        fin: bool,
        payload: &[u8],
    ) -> Result<DataFrame, DecodeError> {
        if let Some(fragments) = &mut self.fragments {
            fragments.payload.extend_from_slice(payload);
            if fragments.text {
                fragments.check_utf8(fin)?;
            }
            return Ok(if fin {
                DataFrame::Assembled
            } else {
                DataFrame::Partial
            });
        }
        let text = opcode == Opcode::Text;
        if fin {
            if text && std::str::from_utf8(payload).is_err() {
                return Err(DecodeError::InvalidUtf8);
            }
            return Ok(DataFrame::Whole { text });
        }
        let mut fragments = Fragments {
            text,
            payload: Vec::with_capacity(payload.len() * 2),
            utf8_checked: 0,
        };
        fragments.payload.extend_from_slice(payload);
        if text {
            fragments.check_utf8(false)?;
        }
        self.fragments = Some(fragments);
        Ok(DataFrame::Partial)
    }

    fn deliver_fragments<F>(&mut self, on_message: &mut F) -> Flow
    where
        F: FnMut(Message<'_>) -> Flow,
    {
        let Some(Fragments {
            text, mut payload, ..
        }) = self.fragments.take()
        else {
            return Flow::Continue;
        };
        if text {
            on_message(Message::Text(&mut payload))
        } else {
            on_message(Message::Binary(&mut payload))
        }
    }
}

impl Fragments {
    /// Checks the UTF-8 received so far, failing as soon as a byte cannot start or
    /// continue a code point; at the final fragment nothing may be left incomplete.
    fn check_utf8(&mut self, fin: bool) -> Result<(), DecodeError> {
        match std::str::from_utf8(&self.payload[self.utf8_checked..]) {
            Ok(_) => self.utf8_checked = self.payload.len(),
            Err(e) if e.error_len().is_none() && !fin => self.utf8_checked += e.valid_up_to(),
            Err(_) => return Err(DecodeError::InvalidUtf8),
        }
        Ok(())
    }
}

/// A parsed frame header, checked against RFC 6455's rules.
struct Header {
    fin: bool,
    opcode: Opcode,
    mask: Option<[u8; 4]>,
    header_len: usize,
    payload_len: usize,
}

/// What one data frame means for the message it belongs to.
enum DataFrame {
    /// More fragments follow.
    Partial,
    /// An unfragmented message, delivered from the read buffer.
    Whole { text: bool },
    /// The last fragment: the assembled message is ready.
    Assembled,
}

/// Turns a control frame's payload into its message, checking close payloads.
fn control_message(opcode: Opcode, payload: &[u8]) -> Result<Message<'_>, DecodeError> {
    Ok(match opcode {
        Opcode::Ping => Message::Ping(payload),
        Opcode::Pong => Message::Pong(payload),
        _ => Message::Close(parse_close(payload)?),
    })
}

fn parse_close(payload: &[u8]) -> Result<Option<(u16, &str)>, DecodeError> {
    match payload {
        [] => Ok(None),
        [_] => Err(DecodeError::Protocol("close payload of one byte")),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !CloseCode::from(code).is_allowed() {
                return Err(DecodeError::Protocol("invalid close code"));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| DecodeError::InvalidUtf8)?;
            Ok(Some((code, reason)))
        }
    }
}

/// XORs `buf` with the 4-byte masking key, eight bytes at a time.
fn apply_mask(buf: &mut [u8], mask: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let word = u64::from_ne_bytes((&*chunk).try_into().expect("8 bytes")) ^ wide;
        chunk.copy_from_slice(&word.to_ne_bytes());
    }
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= mask[i & 3];
    }
}

/// The longest header [`header`] writes: 2 bytes, an 8-byte length, a 4-byte mask.
pub const MAX_HEADER_LEN: usize = 14;

/// The header of one final frame with a `len`-byte payload: the bytes and how many of
/// them are used.
pub fn header(opcode: Opcode, len: usize, mask: Option<[u8; 4]>) -> ([u8; MAX_HEADER_LEN], usize) {
    let mut head = [0u8; MAX_HEADER_LEN];
    head[0] = 0x80 | opcode.bits();
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let mut used = match len {
        0..=125 => {
            head[1] = mask_bit | len as u8;
            2
        }
        126..=0xFFFF => {
            head[1] = mask_bit | 126;
            head[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            4
        }
        _ => {
            head[1] = mask_bit | 127;
            head[2..10].copy_from_slice(&(len as u64).to_be_bytes());
            10
        }
    };
    if let Some(key) = mask {
        head[used..used + 4].copy_from_slice(&key);
        used += 4;
    }
    (head, used)
}

/// Appends one final frame to `out`, masked with `mask` when given (clients must mask).
pub fn encode_frame(out: &mut Vec<u8>, opcode: Opcode, payload: &[u8], mask: Option<[u8; 4]>) {
    let (head, used) = header(opcode, payload.len(), mask);
    out.reserve(used + payload.len());
    out.extend_from_slice(&head[..used]);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = mask {
        apply_mask(&mut out[start..], key);
    }
}

/// Appends a close frame with `code` and `reason` (cut at a character boundary to fit
/// the 125-byte control frame limit).
pub fn encode_close(out: &mut Vec<u8>, code: u16, reason: &str, mask: Option<[u8; 4]>) {
    let mut cut = reason.len().min(123);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut payload = Vec::with_capacity(2 + cut);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..cut]);
    encode_frame(out, Opcode::Close, &payload, mask);
}

/// The `Sec-WebSocket-Accept` value for a client's `Sec-WebSocket-Key`.
pub fn accept_key(key: &[u8]) -> String {
    derive_accept_key(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    fn client_frame(opcode: Opcode, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_frame(&mut out, opcode, payload, Some(MASK));
        if !fin {
            out[0] &= 0x7F;
        }
        out
    }

    /// Decodes `bytes` as a server and records every message as text.
    fn decode_all(bytes: &[u8]) -> (Result<usize, DecodeError>, Vec<String>) {
        let mut decoder = Decoder::new(Role::Server, 1024);
        let mut buf = bytes.to_vec();
        let mut seen = Vec::new();
        let result = decoder.decode(&mut buf, |m| {
            seen.push(match m {
                Message::Text(t) => format!("text:{}", String::from_utf8_lossy(t)),
                Message::Binary(b) => format!("binary:{b:?}"),
                Message::Ping(p) => format!("ping:{}", String::from_utf8_lossy(p)),
                Message::Pong(p) => format!("pong:{}", String::from_utf8_lossy(p)),
                Message::Close(c) => format!("close:{c:?}"),
            });
            Flow::Continue
        });
        (result, seen)
    }

    #[test]
    fn single_frames_of_every_length_class_round_trip() {
        for len in [0, 1, 125, 126, 65535, 65536] {
            let payload = vec![b'a'; len];
            let mut out = Vec::new();
            encode_frame(&mut out, Opcode::Text, &payload, Some(MASK));
            assert_eq!(out.len(), header(Opcode::Text, len, Some(MASK)).1 + len);
            let mut decoder = Decoder::new(Role::Server, 1 << 20);
            let mut got = None;
            let used = decoder
                .decode(&mut out, |m| {
                    if let Message::Text(t) = m {
                        got = Some(t.len());
                    }
                    Flow::Continue
                })
                .unwrap();
            assert_eq!(used, out.len());
            assert_eq!(got, Some(len));
        }
    }

    #[test]
    fn partial_frames_are_left_unconsumed() {
        let frame = client_frame(Opcode::Text, true, b"hello");
        for cut in 0..frame.len() {
            let (result, seen) = decode_all(&frame[..cut]);
            assert_eq!(result, Ok(0));
            assert!(seen.is_empty());
        }
        let mut two = frame.clone();
        two.extend_from_slice(&frame[..3]);
        assert_eq!(decode_all(&two).0, Ok(frame.len()));
    }

    #[test]
    fn fragments_assemble_with_control_frames_between() {
        let mut bytes = client_frame(Opcode::Text, false, b"hel");
        bytes.extend(client_frame(Opcode::Ping, true, b"p"));
        bytes.extend(client_frame(Opcode::Continuation, false, b"l"));
        bytes.extend(client_frame(Opcode::Continuation, true, b"o"));
        let (result, seen) = decode_all(&bytes);
        assert_eq!(result, Ok(bytes.len()));
        assert_eq!(seen, ["ping:p", "text:hello"]);
    }

    #[test]
    fn framing_violations_are_protocol_errors() {
        let mut rsv = client_frame(Opcode::Text, true, b"x");
        rsv[0] |= 0x40;
        let mut reserved = client_frame(Opcode::Text, true, b"x");
        reserved[0] = 0x83;
        let long_ping = client_frame(Opcode::Ping, true, &[0; 126]);
        let split_ping = client_frame(Opcode::Ping, false, b"x");
        let orphan = client_frame(Opcode::Continuation, true, b"x");
        let mut interleaved = client_frame(Opcode::Text, false, b"x");
        interleaved.extend(client_frame(Opcode::Binary, true, b"y"));
        let mut unmasked = Vec::new();
        encode_frame(&mut unmasked, Opcode::Text, b"x", None);
        let short_close = client_frame(Opcode::Close, true, &[3]);
        let bad_code = client_frame(Opcode::Close, true, &1005u16.to_be_bytes());
        for bytes in [
            rsv,
            reserved,
            long_ping,
            split_ping,
            orphan,
            interleaved,
            unmasked,
            short_close,
            bad_code,
        ] {
            let (result, _) = decode_all(&bytes);
            assert!(
                matches!(result, Err(DecodeError::Protocol(_))),
                "{bytes:?}: {result:?}"
            );
            assert_eq!(result.unwrap_err().close_code(), 1002);
        }
    }

    #[test]
    fn invalid_utf8_fails_at_the_fragment_that_breaks_it() {
        let mut bytes = client_frame(Opcode::Text, false, "κό".as_bytes());
        bytes.extend(client_frame(Opcode::Continuation, false, &[0xF4, 0x90]));
        let (result, _) = decode_all(&bytes);
        assert_eq!(result, Err(DecodeError::InvalidUtf8));
        // A code point split across fragments is fine.
        let euro = "€".as_bytes();
        let mut split = client_frame(Opcode::Text, false, &euro[..1]);
        split.extend(client_frame(Opcode::Continuation, true, &euro[1..]));
        assert_eq!(decode_all(&split).1, ["text:€"]);
        // But a message may not end inside one.
        let truncated = client_frame(Opcode::Text, true, &euro[..2]);
        assert_eq!(decode_all(&truncated).0, Err(DecodeError::InvalidUtf8));
        let mut bad_reason = 1000u16.to_be_bytes().to_vec();
        bad_reason.push(0xFF);
        let close = client_frame(Opcode::Close, true, &bad_reason);
        assert_eq!(decode_all(&close).0, Err(DecodeError::InvalidUtf8));
    }

    #[test]
    fn oversize_messages_fail_from_the_header_alone() {
        let header_only = &client_frame(Opcode::Binary, true, &[0; 2000])[..8];
        assert_eq!(decode_all(header_only).0, Err(DecodeError::TooBig));
        let mut fragments = client_frame(Opcode::Binary, false, &[0; 1000]);
        fragments.extend(&client_frame(Opcode::Continuation, true, &[0; 100])[..8]);
        assert_eq!(decode_all(&fragments).0, Err(DecodeError::TooBig));
        assert_eq!(DecodeError::TooBig.close_code(), 1009);
    }

    #[test]
    fn close_frames_carry_code_and_reason() {
        let mut out = Vec::new();
        encode_close(&mut out, 4000, "bye", Some(MASK));
        assert_eq!(decode_all(&out).1, [r#"close:Some((4000, "bye"))"#]);
        let mut long = Vec::new();
        encode_close(&mut long, 1000, &"é".repeat(100), None);
        assert!(long.len() <= 127);
        assert!(std::str::from_utf8(&long[4..]).is_ok());
    }

    #[test]
    fn stop_leaves_the_rest_unconsumed() {
        let close = client_frame(Opcode::Close, true, &[]);
        let mut bytes = close.clone();
        bytes.extend(client_frame(Opcode::Text, true, b"after"));
        let mut decoder = Decoder::new(Role::Server, 1024);
        let used = decoder.decode(&mut bytes, |_| Flow::Stop).unwrap();
        assert_eq!(used, close.len());
    }

    #[test]
    fn clients_refuse_masked_frames_and_accept_plain_ones() {
        let mut decoder = Decoder::new(Role::Client, 1024);
        let mut masked = client_frame(Opcode::Text, true, b"x");
        assert!(decoder.decode(&mut masked, |_| Flow::Continue).is_err());
        let mut plain = Vec::new();
        encode_frame(&mut plain, Opcode::Text, b"x", None);
        let mut decoder = Decoder::new(Role::Client, 1024);
        assert_eq!(decoder.decode(&mut plain, |_| Flow::Continue), Ok(3));
    }

    #[test]
    fn accept_key_matches_the_rfc_example() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
