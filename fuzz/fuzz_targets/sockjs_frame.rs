//! SockJS framing (`protocol::sockjs`): a client frame as a WebSocket message or a send
//! body carries it, and the server's frames. The input is a client frame, and as UTF-8
//! a message for the server to frame. Checked beyond not panicking: a message framed
//! by the server (`a["..."]`, sockjs-node's quoting) reads back, as a client frame, as
//! the message itself, and so does a close frame's reason.
#![no_main]

use libfuzzer_sys::fuzz_target;
use turntable::protocol::sockjs::{parse_client_frame, quote, write_close, write_message};

fuzz_target!(|input: &[u8]| {
    let _ = parse_client_frame(input);
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let mut framed = Vec::new();
    write_message(&mut framed, input);
    let body = framed.strip_prefix(b"a").expect("a message frame");
    assert_eq!(parse_client_frame(body), Ok(vec![text.to_owned()]));
    let mut quoted = Vec::new();
    quote(&mut quoted, text);
    assert_eq!(
        serde_json::from_slice::<String>(&quoted).ok().as_deref(),
        Some(text)
    );
    let mut close = Vec::new();
    write_close(&mut close, 3000, text);
    let body = close.strip_prefix(b"c").expect("a close frame");
    let (code, reason): (u16, String) = serde_json::from_slice(body).expect("a close frame");
    assert_eq!((code, reason.as_str()), (3000, text));
});
