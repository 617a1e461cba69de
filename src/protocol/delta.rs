//! Quill deltas on the wire, `[{"retain":5},{"insert":"foobar"},{"delete":2}]`: how
//! the World dialect's `ot` action reads the ops a client sends and writes the ops it
//! broadcasts. Documents are plain text, so inserts are strings and no op carries
//! `attributes`; lengths are UTF-16 code units, as JavaScript counts them.

use simd_json::BorrowedValue;
use simd_json::prelude::*;

use super::json::{write_str, write_u64};
use crate::engine::ot::{Delta, Op};

/// Why a client's ops cannot be read.
pub const SHAPE: &str = r#"ops must be an array of {"retain":n}, {"insert":"text"} or {"delete":n} (plain text, no attributes)"#;

/// Reads a delta; `None` if any op has another shape.
pub fn parse(ops: &BorrowedValue) -> Option<Delta> {
    let mut delta = Delta::new();
    for op in ops.as_array()? {
        let op = op.as_object()?;
        if op.len() != 1 {
            return None;
        }
        let (kind, value) = op.iter().next()?;
        let length = || usize::try_from(value.as_u64()?).ok();
        delta.push(match &**kind {
            "retain" => Op::Retain(length()?),
            "delete" => Op::Delete(length()?),
            "insert" => Op::Insert(value.as_str()?.into()),
            _ => return None,
        });
    }
    Some(delta)
}

/// Appends the delta's ops as a JSON array.
pub fn write(out: &mut Vec<u8>, delta: &Delta) {
    out.push(b'[');
    for (i, op) in delta.ops().iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match op {
            Op::Retain(n) => {
                out.extend_from_slice(br#"{"retain":"#);
                write_u64(out, *n as u64);
            }
            Op::Delete(n) => {
                out.extend_from_slice(br#"{"delete":"#);
                write_u64(out, *n as u64);
            }
            Op::Insert(text) => {
                out.extend_from_slice(br#"{"insert":"#);
                write_str(out, text);
            }
        }
        out.push(b'}');
    }
    out.push(b']');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(json: &str) -> Option<Delta> {
        let mut bytes = json.as_bytes().to_vec();
        parse(&simd_json::to_borrowed_value(&mut bytes).unwrap())
    }

    #[test]
    fn reads_and_writes_the_seed_example() {
        let json = r#"[{"retain":5},{"insert":"foo\"bar"},{"delete":2}]"#;
        let delta = parsed(json).unwrap();
        assert_eq!(
            delta.ops(),
            [Op::Retain(5), Op::Insert("foo\"bar".into()), Op::Delete(2)]
        );
        let mut out = Vec::new();
        write(&mut out, &delta);
        assert_eq!(String::from_utf8(out).unwrap(), json);
    }

    #[test]
    fn refuses_other_shapes() {
        for bad in [
            r#"{"retain":5}"#,
            r#"[{"retain":-1}]"#,
            r#"[{"retain":1.5}]"#,
            r#"[{"insert":{"image":"x.png"}}]"#,
            r#"[{"insert":"a","attributes":{"bold":true}}]"#,
            r#"[{"move":3}]"#,
            r#"[{}]"#,
            r#"[3]"#,
        ] {
            assert!(parsed(bad).is_none(), "{bad}");
        }
    }
}
