//! Network layer: HTTP front door, WebSocket framing, connection I/O.

pub mod http;
pub mod ws;
