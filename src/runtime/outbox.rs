//! The engine's [`Outbox`] in production: events become WebSocket frames encoded once
//! and shared by every recipient's queue; shard messages go to the mesh queues.

use crate::engine::{ConnId, Event, Outbox, ShardId, ShardMsg};
use crate::net::conns::{ConnTable, Dialect, Frame};
use crate::net::ws::{self, Opcode};
use crate::protocol::{talker, turntable};

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
        // Recipients of one event nearly always share a dialect: encode once per
        // dialect met, and share the frame.
        let mut encoded: [(Dialect, Option<Frame>); 2] =
            [(Dialect::Turntable, None), (Dialect::Talker, None)];
        for &conn in to {
            let Some(dialect) = self.conns.get_mut(conn).map(|slot| slot.dialect) else {
                continue;
            };
            let Some((_, cached)) = encoded.iter_mut().find(|(d, _)| *d == dialect) else {
                continue;
            };
            let frame = cached.get_or_insert_with(|| encode(dialect, event));
            if !frame.is_empty() {
                self.conns.push(conn, frame.clone());
            }
        }
    }

    fn send(&mut self, shard: ShardId, msg: ShardMsg) {
        self.mesh.send(shard, msg);
    }
}

/// `event` as a frame of `dialect`; empty if the dialect has no such event.
fn encode(dialect: Dialect, event: &Event) -> Frame {
    let mut payload = Vec::with_capacity(128);
    let known = match dialect {
        Dialect::Turntable => turntable::encode(event, &mut payload),
        Dialect::Talker => talker::encode(event, &mut payload),
        Dialect::Echo => false,
    };
    if known {
        frame(Opcode::Text, &payload)
    } else {
        Frame::from(Vec::new())
    }
}

/// One unmasked server frame, ready to share between connections.
pub fn frame(opcode: Opcode, payload: &[u8]) -> Frame {
    let mut bytes = Vec::with_capacity(ws::header_len(payload.len(), false) + payload.len());
    ws::encode_frame(&mut bytes, opcode, payload, None);
    Frame::from(bytes)
}
