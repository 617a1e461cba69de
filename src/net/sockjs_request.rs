//! A SockJS HTTP transport request, as the router hands it to the shard that holds its
//! session: which session, which transport, and what its response must carry.

use crate::protocol::Opening;

/// A request of one of the HTTP transports, for the session's shard to serve.
#[derive(Debug, PartialEq, Eq)]
pub struct TransportRequest {
    /// The dialect the session speaks.
    pub opening: Opening,
    /// The session's key: the prefix and the session id (`/sockjs/talker/abc`).
    pub session: Box<str>,
    pub transport: Transport,
    pub content_type: Option<String>,
    /// The body's length, or `None` for a chunked body (what Node's http client sends).
    pub body_len: Option<usize>,
    /// The sticky-session cookie, when the service wants one (every transport sends it).
    pub cookie: Option<(&'static str, String)>,
    /// CORS headers (the xhr and eventsource transports send them).
    pub cors: Vec<(&'static str, String)>,
    /// Bytes a streaming response carries before it ends.
    pub response_limit: usize,
    pub keep_alive: bool,
    /// An HTTP/1.0 client: no chunked encoding, the connection closes after a stream.
    pub http10: bool,
}

impl TransportRequest {
    /// What the xhr transports' responses carry: the cookie, then CORS.
    pub fn xhr_headers(&self) -> Vec<(&'static str, String)> {
        self.cookie.iter().chain(&self.cors).cloned().collect()
    }
}

/// The SockJS HTTP transports: requests that receive the session's frames, and
/// requests that send it messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    Receive(Receiver),
    Send(Sender),
}

/// The transports that receive a session's frames.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Receiver {
    /// `POST .../xhr`: one frame per request.
    XhrPolling,
    /// `POST .../xhr_streaming`: frames as chunks until the response limit.
    XhrStreaming,
    /// `GET .../eventsource`: frames as server-sent events.
    EventSource,
    /// `GET .../htmlfile?c=cb`: frames as script tags calling `cb`.
    HtmlFile { callback: String },
    /// `GET .../jsonp?c=cb`: one frame per request, as a call of `cb`.
    JsonpPolling { callback: String },
}

/// The transports that send a session messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sender {
    /// `POST .../xhr_send`: a JSON array of messages.
    Xhr,
    /// `POST .../jsonp_send`: a JSON array of messages, form-encoded as `d=` or plain.
    Jsonp,
}
