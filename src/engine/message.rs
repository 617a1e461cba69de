//! The vocabulary between the layers: what a connection asks of the engine
//! ([`Command`]), what the engine tells connections ([`Event`]) and what shards tell
//! each other ([`ShardMsg`]). None of it knows any dialect's JSON shape.

mod command;
mod event;
mod ids;
mod query;
mod shard_msg;

pub use command::*;
pub use event::*;
pub use ids::*;
pub use query::*;
pub use shard_msg::*;
