//! Operational transformation for the World dialect's collaborative plain-text documents.
//!
//! A client edits a document with a Quill-style [`Delta`] (retain, insert, delete) made
//! against the last revision it saw. The document's owner shard keeps a [`Document`]: the
//! text, its revision and the last accepted deltas. [`Document::submit`] transforms an
//! incoming delta over every delta accepted since its base revision, applies it, and
//! returns the transformed delta for the caller to broadcast to the other clients.
//!
//! Lengths count UTF-16 code units, as Quill and JavaScript clients do, and a retain or
//! delete may not end inside a surrogate pair. Positions past a delta's retains and
//! deletes are kept as they are, as in Quill.
//!
//! Ties (two inserts at the same place) go to the delta the server accepted first: the
//! server computes `accepted.transform(&incoming, true)`. A client holding an unconfirmed
//! delta `mine` that receives a server delta `theirs` therefore keeps
//! `theirs.transform(&mine, true)` as its pending delta and applies
//! `mine.transform(&theirs, false)` to its text.
//!
//! The module does no JSON: the protocol layer parses into and encodes from these types.

use std::collections::VecDeque;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One step of a [`Delta`], lengths in UTF-16 code units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Keeps this many units of the text.
    Retain(usize),
    /// Inserts this text here.
    Insert(String),
    /// Removes this many units of the text.
    Delete(usize),
}

impl Op {
    /// How many UTF-16 code units the op retains, inserts or deletes.
    pub fn len(&self) -> usize {
        match self {
            Op::Retain(n) | Op::Delete(n) => *n,
            Op::Insert(text) => text.encode_utf16().count(),
        }
    }

    /// Whether the op does nothing (it is dropped when pushed).
    pub fn is_empty(&self) -> bool {
        match self {
            Op::Retain(n) | Op::Delete(n) => *n == 0,
            Op::Insert(text) => text.is_empty(),
        }
    }
}

/// One change to a text, in Quill's canonical form so equal changes compare equal: no
/// empty ops, adjacent ops of the same kind merged, an insert before an adjacent delete,
/// no trailing retain.
#[derive(Debug, Clone, Default)]
pub struct Delta {
    ops: Vec<Op>,
    /// Retained units pushed last: kept aside, and dropped unless an insert or delete
    /// follows.
    pending_retain: usize,
}

/// A delta crosses nodes as its list of ops; the receiver rebuilds the canonical form,
/// so even a non-canonical list from a peer makes a well-formed delta.
impl Serialize for Delta {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.ops.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Delta {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Delta, D::Error> {
        Ok(Vec::<Op>::deserialize(deserializer)?.into_iter().collect())
    }
}

impl PartialEq for Delta {
    fn eq(&self, other: &Delta) -> bool {
        self.ops == other.ops
    }
}

impl Eq for Delta {}

impl FromIterator<Op> for Delta {
    fn from_iter<I: IntoIterator<Item = Op>>(ops: I) -> Delta {
        let mut delta = Delta::new();
        for op in ops {
            delta.push(op);
        }
        delta
    }
}

impl Delta {
    /// The delta that changes nothing.
    pub fn new() -> Delta {
        Delta::default()
    }

    /// Roughly the memory the delta holds: its ops and their inserted text.
    pub fn heap_bytes(&self) -> usize {
        let text: usize = self
            .ops
            .iter()
            .map(|op| match op {
                Op::Insert(text) => text.len(),
                _ => 0,
            })
            .sum();
        self.ops.len() * std::mem::size_of::<Op>() + text
    }

    /// Appends `op`, keeping the delta canonical.
    pub fn push(&mut self, op: Op) {
        if op.is_empty() {
            return;
        }
        match op {
            Op::Retain(n) => self.pending_retain = self.pending_retain.saturating_add(n),
            Op::Delete(n) => {
                self.flush_retain();
                match self.ops.last_mut() {
                    Some(Op::Delete(last)) => *last = last.saturating_add(n),
                    _ => self.ops.push(Op::Delete(n)),
                }
            }
            Op::Insert(text) => {
                self.flush_retain();
                self.push_insert(text);
            }
        }
    }

    fn flush_retain(&mut self) {
        if self.pending_retain > 0 {
            self.ops.push(Op::Retain(self.pending_retain));
            self.pending_retain = 0;
        }
    }

    /// Appends an insert, placing it before a trailing delete (Quill's canonical order).
    fn push_insert(&mut self, text: String) {
        let at = match self.ops.last() {
            Some(Op::Delete(_)) => self.ops.len() - 1,
            _ => self.ops.len(),
        };
        if let Some(Op::Insert(previous)) = at.checked_sub(1).map(|i| &mut self.ops[i]) {
            previous.push_str(&text);
        } else {
            self.ops.insert(at, Op::Insert(text));
        }
    }

    /// The ops, canonical.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Whether applying the delta leaves any text unchanged.
    pub fn is_noop(&self) -> bool {
        self.ops.is_empty()
    }

    /// How many UTF-16 code units of the text the delta walks over (retains and deletes).
    pub fn base_len(&self) -> usize {
        self.ops
            .iter()
            .filter(|op| !matches!(op, Op::Insert(_)))
            .fold(0, |sum, op| sum.saturating_add(op.len()))
    }

    /// The length of a text of `len` units (at least [`Delta::base_len`]) once changed.
    fn len_after(&self, len: usize) -> usize {
        self.ops.iter().fold(len, |len, op| match op {
            Op::Retain(_) => len,
            Op::Insert(_) => len + op.len(),
            Op::Delete(n) => len - n,
        })
    }

    /// Applies the delta to `text` in one pass; text past the delta's reach is kept.
    pub fn apply(&self, text: &str) -> Result<String, OtError> {
        let inserted: usize = self.ops.iter().map(inserted_bytes).sum();
        let mut out = String::with_capacity(text.len() + inserted);
        let mut rest = text;
        for op in &self.ops {
            match op {
                Op::Retain(n) => {
                    let (kept, tail) = split_utf16(rest, *n)?;
                    out.push_str(kept);
                    rest = tail;
                }
                Op::Insert(inserted) => out.push_str(inserted),
                Op::Delete(n) => rest = split_utf16(rest, *n)?.1,
            }
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Quill's `self.transform(other, priority)`: `other`, made against the same text as
    /// `self`, rewritten to apply after `self`. When both insert at the same place,
    /// `priority` puts `self`'s insert first.
    pub fn transform(&self, other: &Delta, priority: bool) -> Delta {
        let (mut mine, mut theirs) = (Cursor::new(self), Cursor::new(other));
        let mut out = Delta::new();
        while !theirs.is_done() {
            let theirs_inserts = matches!(theirs.peek(), Some(Op::Insert(_)));
            if matches!(mine.peek(), Some(Op::Insert(_))) && (priority || !theirs_inserts) {
                out.push(Op::Retain(mine.take(usize::MAX).len()));
            } else if theirs_inserts {
                out.push(theirs.take(usize::MAX).into_op());
            } else {
                let n = mine.peek_len().min(theirs.peek_len());
                match (mine.take(n), theirs.take(n)) {
                    (Piece::Delete(_), _) => {}
                    (_, Piece::Delete(n)) => out.push(Op::Delete(n)),
                    _ => out.push(Op::Retain(n)),
                }
            }
        }
        out
    }

    /// The single delta doing `self` then `other` (`other` made against `self`'s result).
    /// When `other` is not valid for that result the outcome is unspecified.
    pub fn compose(&self, other: &Delta) -> Delta {
        let (mut mine, mut theirs) = (Cursor::new(self), Cursor::new(other));
        let mut out = Delta::new();
        while !mine.is_done() && !theirs.is_done() {
            if matches!(theirs.peek(), Some(Op::Insert(_))) {
                out.push(theirs.take(usize::MAX).into_op());
            } else if matches!(mine.peek(), Some(Op::Delete(_))) {
                out.push(mine.take(usize::MAX).into_op());
            } else {
                let n = mine.peek_len().min(theirs.peek_len());
                match (mine.take(n), theirs.take(n)) {
                    (piece, Piece::Retain(_)) => out.push(piece.into_op()),
                    (Piece::Retain(_), Piece::Delete(n)) => out.push(Op::Delete(n)),
                    // `other` deletes what `self` inserted: neither remains.
                    _ => {}
                }
            }
        }
        mine.drain_into(&mut out);
        theirs.drain_into(&mut out);
        out
    }
}

fn inserted_bytes(op: &Op) -> usize {
    match op {
        Op::Insert(text) => text.len(),
        _ => 0,
    }
}

/// Splits `text` after `units` UTF-16 code units.
fn split_utf16(text: &str, units: usize) -> Result<(&str, &str), OtError> {
    let mut counted = 0;
    for (at, c) in text.char_indices() {
        if counted == units {
            return Ok(text.split_at(at));
        }
        counted += c.len_utf16();
        if counted > units {
            return Err(OtError::SplitsCharacter);
        }
    }
    if counted == units {
        Ok((text, ""))
    } else {
        Err(OtError::OutOfRange)
    }
}

/// The longest prefix of `text` of at most `max` units, and its length in units. It
/// takes at least one character, so a cursor always moves on, even when `max` would end
/// inside a surrogate pair.
fn prefix_utf16(text: &str, max: usize) -> (&str, usize) {
    let mut units = 0;
    for (at, c) in text.char_indices() {
        let next = units + c.len_utf16();
        if next > max && at > 0 {
            return (&text[..at], units);
        }
        units = next;
    }
    (text, units)
}

/// A part of an op handed out by a [`Cursor`], borrowing any inserted text.
enum Piece<'a> {
    Retain(usize),
    Insert(&'a str, usize),
    Delete(usize),
}

impl Piece<'_> {
    fn len(&self) -> usize {
        match self {
            Piece::Retain(n) | Piece::Insert(_, n) | Piece::Delete(n) => *n,
        }
    }

    fn into_op(self) -> Op {
        match self {
            Piece::Retain(n) => Op::Retain(n),
            Piece::Insert(text, _) => Op::Insert(text.to_owned()),
            Piece::Delete(n) => Op::Delete(n),
        }
    }
}

/// Walks a delta's ops, handing out pieces of a requested length, for `transform` and
/// `compose`. Past the last op it hands out retains without end, as Quill does.
struct Cursor<'a> {
    /// The current op and those after it.
    rest: &'a [Op],
    /// Units of the current op not handed out yet.
    left: usize,
    /// Bytes of the current op already handed out (for an insert).
    taken_bytes: usize,
}

impl<'a> Cursor<'a> {
    fn new(delta: &'a Delta) -> Cursor<'a> {
        Cursor::at(&delta.ops)
    }

    fn at(rest: &'a [Op]) -> Cursor<'a> {
        Cursor {
            rest,
            left: rest.first().map_or(0, Op::len),
            taken_bytes: 0,
        }
    }

    fn is_done(&self) -> bool {
        self.rest.is_empty()
    }

    fn peek(&self) -> Option<&'a Op> {
        self.rest.first()
    }

    fn peek_len(&self) -> usize {
        if self.is_done() {
            usize::MAX
        } else {
            self.left
        }
    }

    /// Hands out up to `max` units of the current op (a whole character at least).
    fn take(&mut self, max: usize) -> Piece<'a> {
        let piece = match self.rest.first() {
            None => return Piece::Retain(max),
            Some(Op::Retain(_)) => Piece::Retain(max.min(self.left)),
            Some(Op::Delete(_)) => Piece::Delete(max.min(self.left)),
            Some(Op::Insert(text)) => {
                let (head, units) = prefix_utf16(&text[self.taken_bytes..], max);
                self.taken_bytes += head.len();
                Piece::Insert(head, units)
            }
        };
        self.left -= piece.len();
        if self.left == 0 {
            *self = Cursor::at(&self.rest[1..]);
        }
        piece
    }

    /// Pushes everything not handed out yet.
    fn drain_into(mut self, out: &mut Delta) {
        while !self.is_done() {
            out.push(self.take(usize::MAX).into_op());
        }
    }
}

/// Why a delta was refused; the document is left unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OtError {
    /// The base revision is older than the kept history, so the delta cannot be
    /// transformed; the client must reload the document.
    RevisionTooOld { oldest: u64 },
    /// The base revision was never issued.
    RevisionInFuture { current: u64 },
    /// The delta retains or deletes past the end of the text.
    OutOfRange,
    /// A retain or delete ends inside a UTF-16 surrogate pair.
    SplitsCharacter,
    /// The document would grow past its limit (in UTF-16 code units).
    TooLarge { max: usize },
}

impl OtError {
    /// Dotted code, as the protocol reports it.
    pub fn code(&self) -> &'static str {
        match self {
            OtError::RevisionTooOld { .. } => "ot.revision_too_old",
            OtError::RevisionInFuture { .. } => "ot.revision_in_future",
            OtError::OutOfRange => "ot.out_of_range",
            OtError::SplitsCharacter => "ot.splits_character",
            OtError::TooLarge { .. } => "ot.too_large",
        }
    }
}

impl OtError {
    /// What went wrong, for the error's `message`.
    pub fn message(&self) -> &'static str {
        match self {
            OtError::RevisionTooOld { .. } => {
                "the edit's revision is older than the history kept: reopen the document"
            }
            OtError::RevisionInFuture { .. } => "the edit's revision is newer than the document",
            OtError::OutOfRange => "the operations reach past the end of the text",
            OtError::SplitsCharacter => "the operations split a surrogate pair",
            OtError::TooLarge { .. } => "the document would exceed its maximum length",
        }
    }
}

impl fmt::Display for OtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())?;
        match self {
            OtError::RevisionTooOld { oldest } => write!(f, " (oldest accepted: {oldest})"),
            OtError::RevisionInFuture { current } => write!(f, " (document at {current})"),
            OtError::TooLarge { max } => write!(f, " ({max} UTF-16 units)"),
            OtError::OutOfRange | OtError::SplitsCharacter => Ok(()),
        }
    }
}

impl std::error::Error for OtError {}

/// The history a document may keep whatever its size, in bytes.
pub const HISTORY_BYTES_FLOOR: usize = 64 << 10;

/// A document as its owner shard keeps it: the authoritative text and the recent deltas
/// that late clients' deltas are transformed over.
#[derive(Debug)]
pub struct Document {
    text: String,
    /// The text's length in UTF-16 code units.
    len_utf16: usize,
    revision: u64,
    /// The last accepted deltas, oldest first: the one at the back made `revision`.
    history: VecDeque<Delta>,
    /// What the deltas in `history` hold, by [`Delta::heap_bytes`].
    history_bytes: usize,
    max_history: usize,
    max_len: usize,
}

impl Document {
    /// An empty document at revision 0, keeping at most `max_len` UTF-16 code units of
    /// text and the last `max_history` deltas, as long as they hold no more than
    /// [`HISTORY_BYTES_FLOOR`] or the text's own size, whichever is larger (so a
    /// document's history costs at most about what its text does).
    pub fn new(max_history: usize, max_len: usize) -> Document {
        Document {
            text: String::new(),
            len_utf16: 0,
            revision: 0,
            history: VecDeque::new(),
            history_bytes: 0,
            max_history,
            max_len,
        }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The text's length in UTF-16 code units.
    pub fn len_utf16(&self) -> usize {
        self.len_utf16
    }

    /// Transforms `delta` (made against revision `base`) over the deltas accepted since,
    /// applies it and returns the new revision and the transformed delta to broadcast.
    ///
    /// A delta that changes nothing once transformed is accepted without a new revision:
    /// the answer is the current revision and an empty delta, which needs no broadcast.
    /// On error the document is unchanged.
    pub fn submit(&mut self, base: u64, delta: Delta) -> Result<(u64, Delta), OtError> {
        self.submit_within(base, delta, self.max_len)
    }

    /// [`Document::submit`], with the text held to `max_len` UTF-16 units this once if
    /// that is less than the document's own limit (a quota the document shares).
    pub fn submit_within(
        &mut self,
        base: u64,
        delta: Delta,
        max_len: usize,
    ) -> Result<(u64, Delta), OtError> {
        let max_len = max_len.min(self.max_len);
        let delta = self.transform_since(base, delta)?;
        if delta.is_noop() {
            return Ok((self.revision, delta));
        }
        if delta.base_len() > self.len_utf16 {
            return Err(OtError::OutOfRange);
        }
        let len = delta.len_after(self.len_utf16);
        if len > max_len {
            return Err(OtError::TooLarge { max: max_len });
        }
        self.text = delta.apply(&self.text)?;
        self.len_utf16 = len;
        self.accept(delta.clone());
        Ok((self.revision, delta))
    }

    fn transform_since(&self, base: u64, delta: Delta) -> Result<Delta, OtError> {
        if base > self.revision {
            return Err(OtError::RevisionInFuture {
                current: self.revision,
            });
        }
        let oldest = self.revision - self.history.len() as u64;
        if base < oldest {
            return Err(OtError::RevisionTooOld { oldest });
        }
        let since = self.history.range((base - oldest) as usize..);
        Ok(since.fold(delta, |delta, accepted| accepted.transform(&delta, true)))
    }

    fn accept(&mut self, delta: Delta) {
        self.revision += 1;
        self.history_bytes += delta.heap_bytes();
        self.history.push_back(delta);
        let budget = self.text.len().max(HISTORY_BYTES_FLOOR);
        while self.history.len() > self.max_history
            || (self.history.len() > 1 && self.history_bytes > budget)
        {
            let oldest = self.history.pop_front().expect("longer than one");
            self.history_bytes -= oldest.heap_bytes();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use crate::engine::ot_client::{Outgoing, Replica};

    fn retain(n: usize) -> Op {
        Op::Retain(n)
    }

    fn insert(text: &str) -> Op {
        Op::Insert(text.to_owned())
    }

    fn delete(n: usize) -> Op {
        Op::Delete(n)
    }

    fn delta(ops: impl IntoIterator<Item = Op>) -> Delta {
        ops.into_iter().collect()
    }

    #[test]
    fn push_keeps_the_delta_canonical() {
        let d = delta([
            retain(0),
            insert(""),
            retain(2),
            retain(1),
            delete(1),
            insert("a"),
            delete(2),
            insert("b"),
            retain(4),
        ]);
        assert_eq!(d.ops(), &[retain(3), insert("ab"), delete(3)]);
        assert_eq!(d.base_len(), 6);
        assert!(delta([retain(5)]).is_noop());
        assert_eq!(
            delta([retain(5), insert("x")]).ops(),
            &[retain(5), insert("x")]
        );
    }

    #[test]
    fn applies_the_seed_example() {
        let d = delta([retain(5), insert("foobar")]);
        assert_eq!(d.apply("hello world").unwrap(), "hellofoobar world");
        let d = delta([retain(5), insert("foobar"), delete(2)]);
        assert_eq!(d.apply("hello world").unwrap(), "hellofoobarorld");
    }

    #[test]
    fn astral_characters_count_two_units() {
        let text = "a😀b";
        assert_eq!(
            delta([retain(3), insert("é")]).apply(text).unwrap(),
            "a😀éb"
        );
        assert_eq!(delta([retain(1), delete(2)]).apply(text).unwrap(), "ab");
        assert_eq!(delta([retain(4)]).apply(text).unwrap(), text);
        let split = Err(OtError::SplitsCharacter);
        assert_eq!(delta([retain(2), insert("x")]).apply(text), split);
        assert_eq!(delta([retain(1), delete(1)]).apply(text), split);
        assert_eq!(Op::Insert("😀é".into()).len(), 3);
    }

    #[test]
    fn refuses_deltas_past_the_end() {
        let out = Err(OtError::OutOfRange);
        assert_eq!(delta([retain(4), insert("x")]).apply("abc"), out);
        assert_eq!(delta([retain(1), delete(3)]).apply("abc"), out);
        assert_eq!(
            delta([retain(3), insert("x")]).apply("abc").unwrap(),
            "abcx"
        );
    }

    #[test]
    fn transform_breaks_ties_by_priority() {
        let a = delta([retain(1), insert("A")]);
        let b = delta([retain(1), insert("B")]);
        assert_eq!(a.transform(&b, true).ops(), &[retain(2), insert("B")]);
        assert_eq!(a.transform(&b, false).ops(), &[retain(1), insert("B")]);
        let ab = delta([retain(1), insert("A")]).compose(&a.transform(&b, true));
        assert_eq!(ab.apply("xy").unwrap(), "xABy");
    }

    #[test]
    fn transform_drops_what_was_already_deleted() {
        let a = delta([retain(1), delete(3)]);
        let b = delta([retain(2), delete(3), insert("z")]);
        let b2 = a.transform(&b, true);
        assert_eq!(b2.ops(), &[retain(1), insert("z"), delete(1)]);
        assert_eq!(b2.apply(&a.apply("abcdef").unwrap()).unwrap(), "azf");
    }

    #[test]
    fn composes_in_order() {
        let a = delta([retain(1), insert("xyz"), delete(1)]);
        let b = delta([retain(2), delete(2), insert("é")]);
        let ab = a.compose(&b);
        assert_eq!(ab.ops(), &[retain(1), insert("xé"), delete(1)]);
        assert_eq!(ab.apply("abcd").unwrap(), "axécd");
        assert_eq!(b.apply(&a.apply("abcd").unwrap()).unwrap(), "axécd");
    }

    fn document(text: &str) -> Document {
        let mut doc = Document::new(2, 10);
        doc.submit(0, delta([insert(text)])).unwrap();
        doc
    }

    #[test]
    fn submit_transforms_a_stale_delta() {
        let mut doc = document("hello");
        let (rev, op) = doc.submit(1, delta([retain(5), insert("!")])).unwrap();
        assert_eq!((rev, op.ops()), (2, &[retain(5), insert("!")][..]));
        let (rev, op) = doc.submit(1, delta([insert("Oh ")])).unwrap();
        assert_eq!((rev, op.ops()), (3, &[insert("Oh ")][..]));
        assert_eq!(doc.text(), "Oh hello!");
        assert_eq!(doc.len_utf16(), 9);
    }

    #[test]
    fn submit_accepts_a_noop_without_a_revision() {
        let mut doc = document("abc");
        doc.submit(1, delta([delete(1)])).unwrap();
        let (rev, op) = doc.submit(1, delta([delete(1)])).unwrap();
        assert_eq!((rev, op.is_noop()), (2, true));
        assert_eq!(doc.text(), "bc");
    }

    #[test]
    fn history_is_bounded_by_bytes_as_well_as_count() {
        let mut doc = Document::new(1000, 1 << 20);
        let chunk = "x".repeat(16 << 10);
        for rev in 0..8 {
            // Each edit inserts 16 KiB and deletes it again: the text stays empty.
            doc.submit(2 * rev, delta([insert(&chunk)])).unwrap();
            doc.submit(2 * rev + 1, delta([delete(chunk.len())]))
                .unwrap();
        }
        assert_eq!((doc.text(), doc.revision()), ("", 16));
        assert!(
            doc.history_bytes <= HISTORY_BYTES_FLOOR && doc.history.len() < 16,
            "{} deltas, {} bytes",
            doc.history.len(),
            doc.history_bytes
        );
        let oldest = doc.revision() - doc.history.len() as u64;
        assert_eq!(
            doc.submit(0, delta([insert("late")])),
            Err(OtError::RevisionTooOld { oldest })
        );
    }

    #[test]
    fn submit_refuses_bad_revisions() {
        let mut doc = document("abc");
        let d = delta([insert("x")]);
        let future = doc.submit(2, d.clone());
        assert_eq!(future, Err(OtError::RevisionInFuture { current: 1 }));
        doc.submit(1, d.clone()).unwrap();
        doc.submit(2, d.clone()).unwrap();
        let old = doc.submit(0, d.clone());
        assert_eq!(old, Err(OtError::RevisionTooOld { oldest: 1 }));
        assert_eq!(doc.submit(1, d).map(|(rev, _)| rev), Ok(4));
    }

    #[test]
    fn submit_refuses_growing_past_the_limit() {
        let mut doc = document("12345😀");
        assert_eq!(doc.len_utf16(), 7);
        let d = delta([insert("😀é😀")]);
        assert_eq!(doc.submit(1, d), Err(OtError::TooLarge { max: 10 }));
        let d = delta([retain(6), insert("x")]);
        assert_eq!(doc.submit(1, d), Err(OtError::SplitsCharacter));
        let d = delta([retain(8), insert("x")]);
        assert_eq!(doc.submit(1, d), Err(OtError::OutOfRange));
        assert_eq!((doc.text(), doc.revision()), ("12345😀", 1));
        doc.submit(1, delta([delete(1), insert("😀é")])).unwrap();
        assert_eq!((doc.text(), doc.len_utf16()), ("😀é2345😀", 9));
    }

    #[test]
    fn hostile_lengths_are_refused_without_panics() {
        let mut doc = document("ab");
        let huge = delta([
            retain(usize::MAX),
            retain(9),
            insert("x"),
            delete(usize::MAX),
        ]);
        assert_eq!(huge.base_len(), usize::MAX);
        assert_eq!(doc.submit(1, huge), Err(OtError::OutOfRange));
        let split = delta([delete(1)]);
        assert!(delta([insert("😀")]).compose(&split).is_noop());
    }

    #[test]
    fn errors_have_dotted_codes() {
        let err = OtError::RevisionTooOld { oldest: 3 };
        assert_eq!(err.code(), "ot.revision_too_old");
        assert!(err.to_string().contains('3'));
        assert_eq!(OtError::SplitsCharacter.code(), "ot.splits_character");
    }

    /// A random edit step: what to do (retain, insert, delete), how many characters to
    /// retain or delete, and what to insert.
    type Step = (u8, usize, String);

    fn steps() -> impl Strategy<Value = Vec<Step>> {
        proptest::collection::vec((0..3u8, 1..4usize, "[xyé😀]{1,3}"), 0..6)
    }

    fn text() -> impl Strategy<Value = String> {
        "[ab é中😀]{0,12}"
    }

    /// A delta valid for `text`, built from random steps.
    fn edit(text: &str, steps: &[Step]) -> Delta {
        let mut chars = text.chars();
        let mut units = |n: usize| -> usize { chars.by_ref().take(n).map(char::len_utf16).sum() };
        steps
            .iter()
            .map(|(kind, n, inserted)| match kind {
                0 => Op::Retain(units(*n)),
                1 => Op::Insert(inserted.clone()),
                _ => Op::Delete(units(*n)),
            })
            .collect()
    }

    fn after(text: &str, deltas: &[&Delta]) -> String {
        deltas
            .iter()
            .fold(text.to_owned(), |text, d| d.apply(&text).unwrap())
    }

    enum Down {
        Ack(u64),
        Op(u64, Delta),
    }

    /// A client with its queues to and from the server.
    struct Client {
        replica: Replica,
        up: VecDeque<Outgoing>,
        down: VecDeque<Down>,
    }

    impl Client {
        fn new(doc: &Document) -> Client {
            Client {
                replica: Replica::new(doc.text().to_owned(), doc.revision()),
                up: VecDeque::new(),
                down: VecDeque::new(),
            }
        }

        fn edit(&mut self, steps: &[Step]) {
            let delta = edit(self.replica.text(), steps);
            self.up.extend(self.replica.edit(delta).unwrap());
        }

        fn receive(&mut self) {
            match self.down.pop_front() {
                Some(Down::Ack(revision)) => self.up.extend(self.replica.acknowledge(revision)),
                Some(Down::Op(revision, theirs)) => self.replica.receive(revision, theirs).unwrap(),
                None => {}
            }
        }
    }

    /// The server takes the next delta client `from` sent.
    fn serve(doc: &mut Document, clients: &mut [Client], from: usize) {
        let Some((base, delta)) = clients[from].up.pop_front() else {
            return;
        };
        let (revision, delta) = doc.submit(base, delta).unwrap();
        for (i, client) in clients.iter_mut().enumerate() {
            if i == from {
                client.down.push_back(Down::Ack(revision));
            } else if !delta.is_noop() {
                client.down.push_back(Down::Op(revision, delta.clone()));
            }
        }
    }

    fn deliver_everything(doc: &mut Document, clients: &mut [Client]) {
        while clients
            .iter()
            .any(|c| !c.up.is_empty() || !c.down.is_empty())
        {
            for i in 0..clients.len() {
                serve(doc, clients, i);
                clients[i].receive();
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn transform_converges_tp1(t in text(), a in steps(), b in steps()) {
            let (a, b) = (edit(&t, &a), edit(&t, &b));
            let ab = after(&t, &[&a, &a.transform(&b, true)]);
            let ba = after(&t, &[&b, &b.transform(&a, false)]);
            prop_assert_eq!(ab, ba);
        }

        #[test]
        fn compose_matches_applying_in_turn(t in text(), a in steps(), b in steps()) {
            let a = edit(&t, &a);
            let b = edit(&a.apply(&t).unwrap(), &b);
            prop_assert_eq!(a.compose(&b).apply(&t).unwrap(), after(&t, &[&a, &b]));
        }

        #[test]
        fn clients_converge_with_the_server(
            t in text(),
            count in 3..5usize,
            actions in proptest::collection::vec((0..4usize, 0..3u8, steps()), 0..60),
        ) {
            let mut doc = Document::new(1000, 10_000);
            doc.submit(0, delta([insert(&t)])).unwrap();
            let mut clients: Vec<Client> = (0..count).map(|_| Client::new(&doc)).collect();
            for (who, action, steps) in &actions {
                let i = who % count;
                match action {
                    0 => clients[i].edit(steps),
                    1 => serve(&mut doc, &mut clients, i),
                    _ => clients[i].receive(),
                }
            }
            deliver_everything(&mut doc, &mut clients);
            prop_assert_eq!(doc.len_utf16(), doc.text().encode_utf16().count());
            for client in &clients {
                prop_assert_eq!(client.replica.text(), doc.text());
                prop_assert_eq!(client.replica.revision(), doc.revision());
            }
        }
    }
}
