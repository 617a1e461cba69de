//! Network layer: the HTTP front door, WebSocket framing, SockJS transports, the
//! connection table and the shard state its tasks share. It drives the dialects
//! (`protocol`) and the engine; it never names the runtime above it.

pub mod address_rate;
pub mod api;
pub mod bus;
pub mod conn;
pub mod conns;
pub mod dashboard;
pub mod dashboard_access;
pub mod dashboard_assets;
pub mod dashboard_figures;
pub mod exposition;
pub mod hook_gate;
pub mod http;
pub mod inbound;
pub mod keys;
pub mod latency;
pub mod metrics;
pub mod origins;
pub mod outbox;
pub mod prometheus;
pub mod queries;
pub mod rate;
pub mod router;
pub mod shard;
pub mod socket;
pub mod sockjs;
pub mod sockjs_request;
pub mod sockjs_session;
pub mod sockjs_table;
pub mod sockjs_writer;
pub mod websocket;
pub mod ws;
