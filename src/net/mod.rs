//! Network layer: HTTP front door, WebSocket framing, connection I/O.

pub mod api;
pub mod conn;
pub mod conns;
pub mod dispatch;
pub mod http;
pub mod socket;
pub mod sockjs;
pub mod sockjs_session;
pub mod ws;
