//! The engine's [`Outbox`] in production: events become WebSocket frames encoded once
//! and shared by every recipient's queue; shard messages go to the mesh queues.

use crate::engine::{ConnId, Event, Outbox, ShardId, ShardMsg};
use crate::net::conns::{ConnTable, Frame};
use crate::net::ws::{self, Opcode};
use crate::protocol::turntable;

use super::mesh::MeshOut;

/// Borrowed pieces of a shard that engine output goes to, for one engine call.
pub struct ShardOutbox<'a> {
    pub conns: &'a mut ConnTable,
    pub mesh: &'a MeshOut,
}

impl Outbox for ShardOutbox<'_> {
    fn deliver(&mut self, to: &[ConnId], event: &Event) {
        if to.is_empty() {
            return;
        }
        // Every connection registered with the engine speaks turntable v1 for now; a
        // second engine dialect adds a per-dialect encoding cache here.
        let mut payload = Vec::with_capacity(128);
        turntable::encode(event, &mut payload);
        let frame = frame(Opcode::Text, &payload);
        for &conn in to {
            self.conns.push(conn, frame.clone());
        }
    }

    fn send(&mut self, shard: ShardId, msg: ShardMsg) {
        self.mesh.send(shard, msg);
    }
}

/// One unmasked server frame, ready to share between connections.
pub fn frame(opcode: Opcode, payload: &[u8]) -> Frame {
    let mut bytes = Vec::with_capacity(ws::header_len(payload.len(), false) + payload.len());
    ws::encode_frame(&mut bytes, opcode, payload, None);
    Frame::from(bytes)
}
