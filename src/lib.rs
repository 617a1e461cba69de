//! turntable: a thread-per-core realtime server (presence, chat rooms, game rooms,
//! pub/sub channels) speaking several client dialects over WebSocket and SockJS.
//!
//! # Layout
//!
//! Four layers, each naming only the ones below it (`scripts/check-layers.py` checks):
//!
//! * [`engine`] — sans-IO shard state. What users, channels, rooms and documents are,
//!   which shard of which node owns each (CRC32 of its id), and what every command
//!   does; `engine::wire` turns shard messages into bytes for other nodes. It takes
//!   commands and shard messages and emits events and shard messages through an
//!   [`engine::Outbox`]; it knows no socket and no dialect. [`clock`] gives it the time.
//! * [`auth`] — token verification and issuing, shared by the dialects. [`hooks`] —
//!   calls into the application's backend (HTTP with JSON, on a thread of its own) and
//!   signed, batched webhooks, for the dialects to ask and tell the backend.
//! * [`protocol`] — the client dialects, one file each, behind one contract
//!   ([`protocol::Dialect`]): a greeting, client messages turned into engine commands
//!   and replies, engine events encoded once per shard, a keepalive policy, a fault
//!   report. `dialects!` in `protocol/mod.rs` registers them.
//! * [`net`] — sockets and HTTP: the router, the WebSocket codec and connection, SockJS,
//!   the HTTP API, the per-shard connection table and writer, and the state a shard's
//!   connections share ([`net::shard::Shard`]).
//! * [`runtime`] — on top: one pinned glommio executor per shard, its tasks (accept,
//!   writer, clock, keepalive, drain), the cross-shard mesh and socket handover.
//!   [`config`] declares every setting once and builds each layer's settings.
//!
//! One inbound message: `net::websocket` decodes it, `net::inbound` hands it to the
//! connection's [`protocol::Session`], which reads the engine and answers with
//! [`protocol::Action`]s; `net::inbound` carries them out; the engine's events come back
//! through `net::outbox` into the connections' queues, which the shard's writer sends.

pub mod auth;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod engine;
pub mod hooks;
pub mod net;
pub mod protocol;
pub mod runtime;
