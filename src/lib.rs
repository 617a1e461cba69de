//! turntable: a thread-per-core realtime server (presence, chat rooms, game rooms,
//! pub/sub channels) speaking several client dialects over WebSocket.
//!
//! Layers, one direction: `net` (sockets, HTTP, WebSocket framing) feeds `protocol`
//! (one file per client dialect) which drives `engine` (sans-IO shard state). `runtime`
//! starts one pinned glommio executor per shard and wires the cross-shard mesh.

pub mod auth;
pub mod clock;
pub mod config;
pub mod engine;
pub mod net;
pub mod protocol;
pub mod runtime;
