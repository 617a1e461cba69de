//! Client dialects: each file turns its clients' frames into engine commands and engine
//! events into its frames. The only place that knows any dialect's JSON shapes.

pub mod json;
pub mod socketcluster;
pub mod talker;
pub mod turntable;
