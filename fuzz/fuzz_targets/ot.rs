//! OT deltas (`engine::ot`) and their wire form (`protocol::delta`), from structured
//! input: a text, two deltas made against it, a third made after the first, and edits
//! submitted to a document against past revisions. Checked: applying never panics;
//! two deltas that apply to the same text converge once each is transformed over the
//! other (`apply(apply(d, a), a.transform(b, true)) == apply(apply(d, b),
//! b.transform(a, false))`); composing equals applying in turn; a document's length
//! and revision stay what its text and history say; a delta written as JSON reads back
//! as itself.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use turntable::engine::ot::{Delta, Document, Op};
use turntable::protocol::delta;

/// An op with lengths small enough to land inside the text.
#[derive(Arbitrary, Debug)]
enum Step {
    Retain(u8),
    Insert(String),
    Delete(u8),
}

#[derive(Arbitrary, Debug)]
struct Input {
    text: String,
    a: Vec<Step>,
    b: Vec<Step>,
    after_a: Vec<Step>,
    /// Edits for a document: how many revisions behind its base is, and the edit.
    edits: Vec<(u8, Vec<Step>)>,
}

fn delta(steps: &[Step]) -> Delta {
    let mut delta = Delta::new();
    for step in steps {
        delta.push(match step {
            Step::Retain(n) => Op::Retain(usize::from(*n)),
            Step::Insert(text) => Op::Insert(text.clone()),
            Step::Delete(n) => Op::Delete(usize::from(*n)),
        });
    }
    delta
}

/// The delta's JSON, read back.
fn round_trip(d: &Delta) -> Delta {
    let mut json = Vec::new();
    delta::write(&mut json, d);
    let value = simd_json::to_borrowed_value(&mut json).expect("written JSON parses");
    delta::parse(&value).expect("written ops read")
}

fn len_utf16(text: &str) -> usize {
    text.encode_utf16().count()
}

fuzz_target!(|input: Input| {
    let (a, b, after_a) = (delta(&input.a), delta(&input.b), delta(&input.after_a));
    for d in [&a, &b, &after_a] {
        assert_eq!(&round_trip(d), d);
    }
    let text = &input.text;
    if let (Ok(ta), Ok(tb)) = (a.apply(text), b.apply(text)) {
        let b_after_a = a.transform(&b, true);
        let a_after_b = b.transform(&a, false);
        assert_eq!(
            b_after_a.apply(&ta),
            a_after_b.apply(&tb),
            "{a:?} and {b:?} diverge on {text:?}"
        );
    }
    if let Ok(ta) = a.apply(text)
        && let Ok(then) = after_a.apply(&ta)
    {
        assert_eq!(a.compose(&after_a).apply(text), Ok(then));
    }
    let mut document = Document::new(8, 4096);
    for (behind, steps) in &input.edits {
        let base = document.revision().saturating_sub(u64::from(*behind));
        let before = (document.text().to_owned(), document.revision());
        match document.submit(base, delta(steps)) {
            Ok((revision, _)) => assert!(revision == before.1 || revision == before.1 + 1),
            Err(_) => assert_eq!((document.text().to_owned(), document.revision()), before),
        }
        assert_eq!(document.len_utf16(), len_utf16(document.text()));
        assert!(document.len_utf16() <= 4096);
    }
});
