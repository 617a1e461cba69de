//! Why the server ends a connection: the close frame's code and reason. The reasons
//! every dialect shares live here; each dialect's own are in its file.

use crate::engine::Event;

/// A close the server asked for: the WebSocket close code and reason (SockJS clients
/// read them from a `c[code,"reason"]` frame).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct CloseReason {
    pub code: u16,
    pub reason: &'static str,
}

impl CloseReason {
    pub const fn new(code: u16, reason: &'static str) -> CloseReason {
        CloseReason { code, reason }
    }

    /// A close with a code and no reason.
    pub const fn code(code: u16) -> CloseReason {
        CloseReason::new(code, "")
    }

    pub const SHUTDOWN: CloseReason = CloseReason::new(1001, "server shutting down");
    pub const SLOW_CONSUMER: CloseReason =
        CloseReason::new(1008, "slow consumer: outbound queue full");
    pub const IDLE: CloseReason = CloseReason::new(1001, "idle timeout");
    /// A connection that did not identify within `identify_timeout` (after its
    /// dialect's error); SocketCluster's own code for a missing `#handshake`.
    pub const IDENTIFY_TIMEOUT: CloseReason = CloseReason::new(4005, "identify timeout");
    pub const DISCONNECTED: CloseReason = CloseReason::new(4003, "disconnected by the server");
    pub const REPLACED: CloseReason = CloseReason::new(4000, "connection replaced");
    pub const SERVER_FATAL: CloseReason = CloseReason::new(1011, "internal error");
    /// A message over the size limit (SockJS HTTP sends; WebSocket framing closes
    /// with the same code).
    pub const TOO_BIG: CloseReason = CloseReason::new(1009, "message too big");

    /// The close an engine event ends a connection with, whatever its dialect (after
    /// the event itself is delivered).
    pub fn after(event: &Event) -> Option<CloseReason> {
        match event {
            Event::Replaced => Some(CloseReason::REPLACED),
            Event::Disconnected => Some(CloseReason::DISCONNECTED),
            _ => None,
        }
    }
}
