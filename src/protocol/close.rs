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
    /// A close with a code and no reason.
    pub const fn code(code: u16) -> CloseReason {
        CloseReason { code, reason: "" }
    }

    pub const SHUTDOWN: CloseReason = CloseReason {
        code: 1001,
        reason: "server shutting down",
    };
    pub const SLOW_CONSUMER: CloseReason = CloseReason {
        code: 1008,
        reason: "slow consumer: outbound queue full",
    };
    pub const IDLE: CloseReason = CloseReason {
        code: 1001,
        reason: "idle timeout",
    };
    pub const DISCONNECTED: CloseReason = CloseReason {
        code: 4003,
        reason: "disconnected by the server",
    };
    pub const REPLACED: CloseReason = CloseReason {
        code: 4000,
        reason: "connection replaced",
    };
    pub const SERVER_FATAL: CloseReason = CloseReason {
        code: 1011,
        reason: "internal error",
    };
    /// A message over the size limit (SockJS HTTP sends; WebSocket framing closes
    /// with the same code).
    pub const TOO_BIG: CloseReason = CloseReason {
        code: 1009,
        reason: "message too big",
    };

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
