//! The SockJS HTTP sessions one shard holds, by id (what `sockjs_session` serves).

use std::time::Instant;

use ahash::AHashMap;

use crate::engine::ConnId;
use crate::protocol::{CloseReason, Session};

/// One SockJS HTTP session.
pub struct HttpSession {
    pub conn: ConnId,
    /// The dialect's state for the session's messages; `None` while a send is handing
    /// messages to it.
    pub state: Option<Session>,
    /// A receiving request is attached.
    pub receiving: bool,
    /// The open frame went out.
    pub opened: bool,
    /// The server closed the session: every receiver gets this until it ends.
    pub closed: Option<CloseReason>,
    /// A receiver was given the close frame.
    pub close_told: bool,
    /// When the last receiver left.
    pub idle_since: Instant,
}

/// This shard's SockJS HTTP sessions by id.
#[derive(Default)]
pub struct HttpSessions {
    pub by_id: AHashMap<Box<str>, HttpSession>,
}
