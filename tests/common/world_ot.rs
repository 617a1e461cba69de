//! World requests and collaborative editing for the tests: an [`Editor`] holds a replica
//! of one document and speaks `ot` as ot.js does (one edit in flight, later ones
//! buffered), and [`Random`] makes replayable edits.

use serde_json::{Value, json};
use turntable::engine::ot::{Delta, Op};
use turntable::engine::ot_client::{Outgoing, Replica};

use super::Client;

/// One World request and the next message (its reply, unless an event comes first).
pub fn rpc(c: &mut Client, action: &str, id: u64, payload: Value) -> Value {
    c.send(json!([action, id, payload]));
    c.recv()
}

/// A delta as the `ops` of an `ot` request.
pub fn ops_json(delta: &Delta) -> Value {
    Value::Array(
        delta
            .ops()
            .iter()
            .map(|op| match op {
                Op::Retain(n) => json!({"retain": n}),
                Op::Insert(s) => json!({"insert": s}),
                Op::Delete(n) => json!({"delete": n}),
            })
            .collect(),
    )
}

/// The delta an `ot` message's `ops` hold.
pub fn delta_of(ops: &Value) -> Delta {
    ops.as_array()
        .unwrap()
        .iter()
        .map(|op| {
            if let Some(n) = op.get("retain") {
                Op::Retain(n.as_u64().unwrap() as usize)
            } else if let Some(n) = op.get("delete") {
                Op::Delete(n.as_u64().unwrap() as usize)
            } else {
                Op::Insert(op["insert"].as_str().unwrap().into())
            }
        })
        .collect()
}

/// A World client with its replica of one document, speaking `ot` as ot.js does (one
/// edit in flight, later ones buffered).
pub struct Editor {
    pub conn: Client,
    document: String,
    pub replica: Replica,
    next_id: u64,
}

impl Editor {
    /// Opens `document` over `conn`, an authenticated World connection.
    pub fn open(mut conn: Client, document: &str) -> Editor {
        let opened = rpc(&mut conn, "ot.open", 0, json!({"document": document}));
        assert_eq!(opened[0], "success", "{opened}");
        let text = opened[2]["text"].as_str().unwrap().to_owned();
        Editor {
            replica: Replica::new(text, opened[2]["variant"].as_u64().unwrap()),
            conn,
            document: document.to_owned(),
            next_id: 1,
        }
    }

    pub fn edit_locally(&mut self, delta: Delta) {
        let outgoing = self.replica.edit(delta).unwrap();
        self.send(outgoing);
    }

    pub fn send(&mut self, outgoing: Option<Outgoing>) {
        let Some((variant, delta)) = outgoing else {
            return;
        };
        self.next_id += 1;
        self.conn.send(json!(["ot", self.next_id, {
            "document": &self.document, "variant": variant, "ops": ops_json(&delta)
        }]));
    }

    /// Handles one message from the server.
    pub fn receive(&mut self) {
        let message = self.conn.recv();
        match message[0].as_str() {
            Some("success") => {
                let next = self
                    .replica
                    .acknowledge(message[2]["variant"].as_u64().unwrap());
                self.send(next);
            }
            Some("ot") => {
                assert_eq!(message[1]["document"], *self.document, "{message}");
                let revision = message[1]["variant"].as_u64().unwrap();
                let theirs = delta_of(&message[1]["ops"]);
                self.replica.receive(revision, theirs).unwrap();
            }
            _ => panic!("unexpected {message}"),
        }
    }
}

/// A small deterministic generator (xorshift), so a failure replays.
pub struct Random(pub u64);

impl Random {
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }

    /// A random edit of `text`: an insert (sometimes of an astral character) or a delete.
    pub fn edit(&mut self, text: &str) -> Delta {
        let chars: Vec<char> = text.chars().collect();
        let at = self.below(chars.len() + 1);
        let units = |cs: &[char]| cs.iter().map(|c| c.len_utf16()).sum::<usize>();
        let mut delta = Delta::new();
        delta.push(Op::Retain(units(&chars[..at])));
        if at < chars.len() && self.below(3) == 0 {
            let end = (at + 1 + self.below(3)).min(chars.len());
            delta.push(Op::Delete(units(&chars[at..end])));
        } else {
            let pieces = ["a", "bc", "é", "🎲", " "];
            delta.push(Op::Insert(pieces[self.below(pieces.len())].into()));
        }
        delta
    }
}

/// `rounds` rounds in which every editor makes one to three random edits at once and
/// reads a little of what arrived (so edits interleave), then reads until none waits.
pub fn edit_at_random(editors: &mut [Editor], mut random: Random, rounds: usize) {
    for _round in 0..rounds {
        for editor in editors.iter_mut() {
            for _ in 0..=random.below(2) {
                let delta = random.edit(editor.replica.text());
                editor.edit_locally(delta);
            }
        }
        // Read a little of what arrived, leaving the rest to interleave with new edits.
        for editor in editors.iter_mut() {
            if editor.replica.awaiting() {
                editor.receive();
            }
        }
    }
    while editors.iter().any(|e| e.replica.awaiting()) {
        for editor in editors.iter_mut().filter(|e| e.replica.awaiting()) {
            editor.receive();
        }
    }
}
