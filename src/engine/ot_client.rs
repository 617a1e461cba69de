//! The client side of collaborative documents: what a client keeps so that it converges
//! on the server's text, in the ot.js scheme. At most one edit awaits the server's
//! acknowledgement; later local edits are composed into a buffer sent on that
//! acknowledgement; an edit from the server is transformed over both, the server's edit
//! winning ties (as it does on the server, see [`super::ot`]).
//!
//! turntable itself never runs it: it is here for Rust clients (the tests, the load
//! generator) so that they speak the protocol exactly as the README documents it.

use super::ot::{Delta, OtError};

/// One client's copy of a document.
#[derive(Debug, Clone)]
pub struct Replica {
    text: String,
    revision: u64,
    in_flight: Option<Delta>,
    buffer: Option<Delta>,
}

/// An edit to send: the revision it was made against (`variant`) and its ops.
pub type Outgoing = (u64, Delta);

impl Replica {
    /// A copy of the document as `ot.open` returned it.
    pub fn new(text: String, revision: u64) -> Replica {
        Replica {
            text,
            revision,
            in_flight: None,
            buffer: None,
        }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The last server revision this copy includes.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// An edit is waiting for the server's acknowledgement.
    pub fn awaiting(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Applies a local edit; returns it to send now unless an edit is already in flight
    /// (then it waits in the buffer).
    pub fn edit(&mut self, delta: Delta) -> Result<Option<Outgoing>, OtError> {
        self.text = delta.apply(&self.text)?;
        if self.in_flight.is_none() {
            self.in_flight = Some(delta.clone());
            return Ok(Some((self.revision, delta)));
        }
        self.buffer = Some(match self.buffer.take() {
            Some(buffer) => buffer.compose(&delta),
            None => delta,
        });
        Ok(None)
    }

    /// The server accepted the edit in flight as `revision`; returns the buffered edit to
    /// send next, if any.
    pub fn acknowledge(&mut self, revision: u64) -> Option<Outgoing> {
        self.revision = revision;
        self.in_flight = self.buffer.take();
        self.in_flight.clone().map(|delta| (revision, delta))
    }

    /// Another client's edit, which the server made `revision`.
    pub fn receive(&mut self, revision: u64, mut theirs: Delta) -> Result<(), OtError> {
        for mine in [&mut self.in_flight, &mut self.buffer]
            .into_iter()
            .flatten()
        {
            let transformed = theirs.transform(mine, true);
            theirs = mine.transform(&theirs, false);
            *mine = transformed;
        }
        self.text = theirs.apply(&self.text)?;
        self.revision = revision;
        Ok(())
    }
}
