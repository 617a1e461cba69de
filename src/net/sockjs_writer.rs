//! How a SockJS receiving request frames its response, transport by transport, as
//! sockjs-node 0.3.24 writes them: polls answer one frame with a Content-Length,
//! streams write frames as chunks after a prelude.

use std::io::Write as _;

use super::http;
use super::sockjs::NO_CACHE;
use super::sockjs_request::{Receiver, TransportRequest};

/// A complete response with a body and sockjs-node's no-cache header.
pub fn http_response(
    status: u16,
    content_type: &str,
    headers: &[(&'static str, String)],
    body: &[u8],
    keep_alive: bool,
) -> Vec<u8> {
    let mut headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    headers.push(NO_CACHE);
    http::response(status, &headers, content_type, body, keep_alive)
}

/// How one receiving transport frames its response.
pub struct Writer {
    transport: Receiver,
    /// What every response of this transport carries besides the no-cache header
    /// (CORS, or JSONP's `nosniff`).
    headers: Vec<(&'static str, String)>,
    /// Chunked encoding (HTTP/1.1 streams); HTTP/1.0 streams end with the connection.
    chunked: bool,
    keep_alive: bool,
    /// A stream writes many frames; a poll answers with exactly one, sent with a
    /// Content-Length.
    pub streaming: bool,
}

impl Writer {
    pub fn new(receiver: &Receiver, request: &TransportRequest) -> Writer {
        let streaming = matches!(
            receiver,
            Receiver::XhrStreaming | Receiver::EventSource | Receiver::HtmlFile { .. }
        );
        Writer {
            transport: receiver.clone(),
            headers: match receiver {
                // No CORS for the script transports, but the sticky-session cookie.
                Receiver::HtmlFile { .. } => request.cookie.iter().cloned().collect(),
                Receiver::JsonpPolling { .. } => (request.cookie.iter().cloned())
                    .chain([("X-Content-Type-Options", "nosniff".to_owned())])
                    .collect(),
                _ => request.xhr_headers(),
            },
            chunked: !request.http10,
            keep_alive: request.keep_alive && !(streaming && request.http10),
            streaming,
        }
    }

    pub fn keeps_connection(&self) -> bool {
        self.keep_alive
    }

    fn content_type(&self) -> &'static str {
        match self.transport {
            Receiver::EventSource => "text/event-stream",
            Receiver::HtmlFile { .. } => "text/html; charset=UTF-8",
            _ => "application/javascript; charset=UTF-8",
        }
    }

    /// The response head and, for streams, the prelude. A poll's head waits for its
    /// frame (see [`Writer::frame`]), so this is empty for polls.
    pub fn head(&self) -> Vec<u8> {
        if !self.streaming {
            return Vec::new();
        }
        let head = http::Head::new(200)
            .header("Content-Type", self.content_type())
            .headers(&self.headers)
            .header(NO_CACHE.0, NO_CACHE.1);
        let head = if self.chunked {
            head.header("Transfer-Encoding", "chunked")
        } else {
            head
        };
        let mut bytes = head.end(self.keep_alive, b"");
        let prelude = match &self.transport {
            Receiver::XhrStreaming => {
                let mut p = vec![b'h'; 2048];
                p.push(b'\n');
                p
            }
            Receiver::EventSource => b"\r\n".to_vec(),
            Receiver::HtmlFile { callback } => htmlfile_prelude(callback),
            _ => Vec::new(),
        };
        self.chunk(&mut bytes, &prelude);
        bytes
    }

    /// One SockJS frame as this transport writes it (a poll: its whole response).
    /// Returns the bytes to write and how many count against the response limit (the
    /// framed data, without HTTP chunking).
    pub fn frame(&self, frame: &[u8]) -> (Vec<u8>, usize) {
        let text = String::from_utf8_lossy(frame);
        let body = match &self.transport {
            Receiver::XhrPolling | Receiver::XhrStreaming => format!("{text}\n").into_bytes(),
            Receiver::EventSource => {
                format!("data: {}\r\n\r\n", escape_eventsource(&text)).into_bytes()
            }
            // `<` escaped: a `</script>` inside a message must not end the script.
            Receiver::HtmlFile { .. } => format!(
                "<script>\np({});\n</script>\r\n",
                serde_json::Value::from(text.as_ref())
                    .to_string()
                    .replace('<', "\\u003c")
            )
            .into_bytes(),
            Receiver::JsonpPolling { callback } => format!(
                "/**/{callback}({});\r\n",
                serde_json::Value::from(text.as_ref())
            )
            .into_bytes(),
        };
        if !self.streaming {
            let response = http_response(
                200,
                self.content_type(),
                &self.headers,
                &body,
                self.keep_alive,
            );
            return (response, body.len());
        }
        let mut bytes = Vec::with_capacity(body.len() + 8);
        self.chunk(&mut bytes, &body);
        (bytes, body.len())
    }

    /// What ends the response: the last chunk of a chunked stream.
    pub fn end(&self) -> Vec<u8> {
        if self.streaming && self.chunked {
            b"0\r\n\r\n".to_vec()
        } else {
            Vec::new()
        }
    }

    fn chunk(&self, out: &mut Vec<u8>, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        if self.chunked {
            let _ = write!(out, "{:x}\r\n", data.len());
            out.extend_from_slice(data);
            out.extend_from_slice(b"\r\n");
        } else {
            out.extend_from_slice(data);
        }
    }
}

/// sockjs-node's `escape_selected` for event streams: `%`, CR, LF and NUL as `%XX`.
fn escape_eventsource(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            '\0' => out.push_str("%00"),
            c => out.push(c),
        }
    }
    out
}

/// The htmlfile page head that defines `p(...)`, padded past 1 KiB as sockjs-node pads
/// it (browsers render nothing before that).
fn htmlfile_prelude(callback: &str) -> Vec<u8> {
    let template = "<!doctype html>\n<html><head>\n  <meta http-equiv=\"X-UA-Compatible\" content=\"IE=edge\" />\n  \
                    <meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\" />\n</head><body><h2>Don't panic!</h2>\n  \
                    <script>\n    document.domain = document.domain;\n    var c = parent.{{ callback }};\n    c.start();\n    \
                    function p(d) {c.message(d);};\n    window.onload = function() {c.stop();};\n  </script>";
    let padded = format!("{template}{}", " ".repeat(1024 - template.len() + 14));
    let mut out = padded.replace("{{ callback }}", callback).into_bytes();
    out.extend_from_slice(b"\r\n\r\n");
    out
}
