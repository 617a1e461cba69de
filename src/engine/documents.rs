//! Collaborative documents in the engine: a document lives on the owner shard of its
//! name, which orders every edit, transforms it against the edits its author had not
//! seen (see [`super::ot`]) and broadcasts the result to the connections that opened
//! it.
//!
//! A connection that opens a document listens to the channel of the same name, so the
//! broadcasts travel the channel's path; the owner answers an open with the text and
//! revision after registering the listener, and answers an edit after sending its
//! broadcast, over the same ordered mesh queue. So a client always sees the edits before
//! its own in order, then its acknowledgement: what an OT client needs to converge.
//!
//! Documents stay in memory while the server runs (there is no storage yet); a shard
//! holds at most `Limits::max_documents` and each at most `Limits::max_document_len`
//! UTF-16 units. A document counts against the quotas of the user who created it (the
//! first to open it): among the documents a shard holds, one user's may number at most
//! `Limits::max_documents_per_user` and hold at most `Limits::max_document_len_per_user`
//! units together, whoever edits them. A node of N shards thus holds at most N times
//! these for one user.

use std::rc::Rc;

use ahash::AHashMap;

use super::message::{
    ConnAddr, ConnId, DocumentCommand, DocumentMsg, ErrorCode, Event, Receipt, ShardMsg,
};
use super::ot::Document;
use super::pubsub::JoinState;
use super::{Engine, Outbox, refuse};

/// The channel of World `world`'s document `name`: what connections that open it
/// listen to. Other dialects cannot join, subscribe or publish to such a channel
/// (`channel.document`); only opening the document reaches it.
pub fn document_channel(world: &str, name: &str) -> Box<str> {
    format!("world:{world}:{DOCUMENT_PREFIX}{name}").into_boxed_str()
}

/// What follows a world's prefix in its documents' channel names.
pub const DOCUMENT_PREFIX: &str = "ot:";

/// The document's name if `channel` is a document's channel (see [`document_channel`];
/// world ids hold no colon).
pub fn document_name(channel: &str) -> Option<&str> {
    channel
        .strip_prefix("world:")
        .and_then(|rest| rest.split_once(':'))
        .and_then(|(_, rest)| rest.strip_prefix(DOCUMENT_PREFIX))
}

/// Whether `channel` is a document's channel.
pub fn is_document_channel(channel: &str) -> bool {
    document_name(channel).is_some()
}

/// What the documents one user created hold, on the shard that holds them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub documents: usize,
    /// Their texts' lengths added up, in UTF-16 units.
    pub len: usize,
}

/// Each document's creator and each creator's [`Usage`], for the per-user quotas.
#[derive(Debug, Default)]
pub struct Quotas {
    creators: AHashMap<Box<str>, Rc<str>>,
    usage: AHashMap<Rc<str>, Usage>,
}

impl Quotas {
    /// What `user`'s documents hold.
    pub fn of_user(&self, user: &str) -> Usage {
        self.usage.get(user).copied().unwrap_or_default()
    }

    /// What the creator of `document` has used (nothing for an unknown document).
    pub fn of_creator(&self, document: &str) -> Usage {
        self.creators
            .get(document)
            .map_or_else(Usage::default, |user| self.of_user(user))
    }

    /// `user` created the (empty) `document`.
    pub fn created(&mut self, document: &str, user: &str) {
        let key = match self.usage.get_key_value(user) {
            Some((key, _)) => key.clone(),
            None => Rc::from(user),
        };
        self.usage.entry(key.clone()).or_default().documents += 1;
        self.creators.insert(Box::from(document), key);
    }

    /// `document`'s text went from `before` to `after` units.
    pub fn resized(&mut self, document: &str, before: usize, after: usize) {
        if let Some(usage) = self
            .creators
            .get(document)
            .and_then(|user| self.usage.get_mut(user))
        {
            usage.len = usage.len + after - before;
        }
    }

    /// `document`, of `len` units, is forgotten.
    pub fn forgot(&mut self, document: &str, len: usize) {
        let Some(user) = self.creators.remove(document) else {
            return;
        };
        if let Some(usage) = self.usage.get_mut(&user) {
            usage.documents -= 1;
            usage.len -= len;
            if usage.documents == 0 {
                self.usage.remove(&user);
            }
        }
    }
}

/// Accepted edits a document keeps to transform late edits against; an edit made
/// against an older revision is refused (`ot.revision_too_old`) and the client reopens.
const HISTORY: usize = 256;

impl Engine {
    /// Open or edit a document for a local connection.
    pub(super) fn document_command(
        &mut self,
        conn: ConnId,
        user: &str,
        cmd: DocumentCommand,
        out: &mut impl Outbox,
    ) {
        let msg = match cmd {
            DocumentCommand::Open { document, receipt } => {
                if !self.tie(conn, &document, false, &receipt, out) {
                    return;
                }
                DocumentMsg::Open {
                    user: Box::from(user),
                    conn: self.addr(conn),
                    receipt,
                    document,
                }
            }
            DocumentCommand::Edit {
                document,
                base,
                delta,
                receipt,
            } => {
                let open = self.conns[&conn]
                    .tie(&document)
                    .is_some_and(|t| !t.member && t.state == JoinState::Done);
                if !open {
                    return refuse(conn, ErrorCode::DocumentNotOpen, receipt, out);
                }
                DocumentMsg::Edit {
                    user: Box::from(user),
                    conn: self.addr(conn),
                    base,
                    delta,
                    receipt,
                    document,
                }
            }
        };
        let owner = self.owner(msg.document());
        self.route(owner, ShardMsg::Document(msg), out);
    }

    /// A message to this shard as a document's owner.
    pub(super) fn on_document_msg(&mut self, msg: DocumentMsg, out: &mut impl Outbox) {
        match msg {
            DocumentMsg::Open {
                document,
                user,
                conn,
                receipt,
            } => self.owner_open(document, &user, conn, receipt, out),
            DocumentMsg::Edit {
                document,
                user,
                conn,
                base,
                delta,
                receipt,
            } => {
                let Some(doc) = self.documents.get_mut(&document) else {
                    return self.refuse_at(conn, ErrorCode::DocumentNotOpen, receipt, out);
                };
                // The creator's other documents leave this one what remains of the quota.
                let before = doc.len_utf16();
                let others = self
                    .document_quotas
                    .of_creator(&document)
                    .len
                    .saturating_sub(before);
                let room = self.limits.max_document_len_per_user.saturating_sub(others);
                let (revision, delta) = match doc.submit_within(base, delta, room) {
                    Ok(accepted) => accepted,
                    Err(e) => return self.refuse_at(conn, ErrorCode::EditRefused(e), receipt, out),
                };
                let after = doc.len_utf16();
                self.document_quotas.resized(&document, before, after);
                if !delta.is_noop() {
                    let edited = Event::DocumentEdited {
                        document: document.clone(),
                        revision,
                        user,
                        delta,
                        skip: Some(conn),
                    };
                    self.send_to_channel(&document, edited, out);
                }
                let accepted = Event::EditAccepted {
                    document,
                    revision,
                    receipt,
                };
                self.send_to_conn(conn, accepted, out);
            }
        }
    }

    /// The document's owner answered an open of a local connection.
    pub(super) fn on_document_opened(
        &mut self,
        document: Box<str>,
        conn: ConnId,
        text: Box<str>,
        revision: u64,
        receipt: Receipt,
        out: &mut impl Outbox,
    ) {
        // An answer to an open the client closed again before it came (the close undid
        // it at the owner) leaves a newer open of the document alone.
        if !self.answer_was_stale(conn, &document) {
            self.tie_done(conn, &document);
        }
        // Every RPC request is answered, even an open the client closed again before
        // this came.
        if self.conns.contains_key(&conn) {
            let opened = Event::DocumentOpened {
                document,
                text,
                revision,
                receipt,
            };
            out.deliver(&[conn], &opened);
        }
    }

    /// Registers the connection as a listener of the document (creating the document
    /// for `user` if it is new) and sends it the text to start from.
    fn owner_open(
        &mut self,
        document: Box<str>,
        user: &str,
        conn: ConnAddr,
        receipt: Receipt,
        out: &mut impl Outbox,
    ) {
        if !self.ensure_document(&document, user) {
            return self.refuse_tie(conn, document, ErrorCode::TooManyDocuments, receipt, out);
        }
        let doc = &self.documents[&document];
        let (text, revision) = (Box::from(doc.text()), doc.revision());
        self.owned_channels.entry(&document).listen(conn);
        let msg = ShardMsg::DocumentOpened {
            document,
            conn: conn.conn,
            text,
            revision,
            receipt,
        };
        self.route(conn.shard, msg, out);
    }

    /// Makes sure the document exists, creating it empty for `user` if there is room
    /// within the shard's and the user's quotas; false if there is not.
    pub(super) fn ensure_document(&mut self, document: &str, user: &str) -> bool {
        if self.documents.contains_key(document) {
            return true;
        }
        let over_quota =
            self.document_quotas.of_user(user).documents >= self.limits.max_documents_per_user;
        if over_quota
            || (self.documents.len() >= self.limits.max_documents
                && !self.evict_a_closed_document())
        {
            return false;
        }
        self.document_quotas.created(document, user);
        let doc = Document::new(HISTORY, self.limits.max_document_len);
        self.documents.insert(Box::from(document), doc);
        true
    }

    /// Makes room by forgetting one document nobody has open; false if all are open.
    /// (Documents live in memory only: a forgotten one starts empty when next opened.)
    fn evict_a_closed_document(&mut self) -> bool {
        let closed = self
            .documents
            .keys()
            .find(|name| self.owned_channels.get(name).is_none())
            .cloned();
        let Some(name) = closed else {
            return false;
        };
        let Some(doc) = self.documents.remove(&name) else {
            return false;
        };
        self.document_quotas.forgot(&name, doc.len_utf16());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_follow_their_creators_documents() {
        let mut q = Quotas::default();
        q.created("a", "ann");
        q.created("b", "ann");
        q.created("c", "bob");
        q.resized("a", 0, 10);
        q.resized("b", 0, 5);
        q.resized("a", 10, 7);
        assert_eq!(
            q.of_user("ann"),
            Usage {
                documents: 2,
                len: 12
            }
        );
        assert_eq!(
            q.of_creator("c"),
            Usage {
                documents: 1,
                len: 0
            }
        );
        q.forgot("a", 7);
        assert_eq!(
            q.of_user("ann"),
            Usage {
                documents: 1,
                len: 5
            }
        );
        q.forgot("b", 5);
        q.forgot("c", 0);
        assert!(q.usage.is_empty() && q.creators.is_empty());
    }

    #[test]
    fn document_channels_are_told_from_world_and_other_channels() {
        assert!(is_document_channel(&document_channel("default", "notes")));
        assert!(is_document_channel("world:w-1:ot:a:b"));
        for other in [
            "world:default:lobby",
            "world:default:otter",
            "ot:notes",
            "lobby",
            "game:ot:x",
            "world:ot",
        ] {
            assert!(!is_document_channel(other), "{other}");
        }
    }
}
