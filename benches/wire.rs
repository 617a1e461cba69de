//! The cross-node codec (`engine::wire`) on the shard messages that cross most: a
//! publication with a 100-byte payload, a join, a presence change, an HTTP API query
//! and its answer. Prints each one's encoded size, then times encode + decode.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use turntable::engine::wire::{decode, encode};
use turntable::engine::{Answer, ChannelMsg, ConnAddr, ConnId, Event, Query, ShardMsg, Status};

fn samples() -> Vec<(&'static str, ShardMsg)> {
    let conn = ConnAddr {
        shard: 1,
        conn: ConnId(0x0003_0000_04d2),
    };
    let data =
        r#"{"timestamp":1700000000000,"from":"1:12345","data":{"move":"e2e4","clock":[291,300]}}"#;
    let data = format!("{data:<100}");
    assert_eq!(data.len(), 100);
    vec![
        (
            "publication",
            ShardMsg::ToChannel {
                channel: "game:4711".into(),
                event: Event::Message {
                    channel: "game:4711".into(),
                    seq: 1234,
                    from: "1:12345".into(),
                    data: data.into(),
                    skip: Some(conn),
                },
            },
        ),
        (
            "join",
            ShardMsg::Channel(ChannelMsg::Join {
                channel: "game:4711".into(),
                user: "1:12345".into(),
                conn,
                invite: vec![],
                receipt: Some("17".into()),
            }),
        ),
        (
            "presence",
            ShardMsg::StatusOf {
                user: "1:12345".into(),
                status: Status::Busy,
            },
        ),
        (
            "query",
            ShardMsg::Query {
                from: 1,
                ticket: 42,
                query: Query::Members {
                    channel: "game:4711".into(),
                },
            },
        ),
        (
            "answer",
            ShardMsg::Answer {
                ticket: 42,
                answer: Answer::Members(
                    (0..10).map(|i| format!("1:{}", 12340 + i).into()).collect(),
                ),
            },
        ),
    ]
}

fn wire(c: &mut Criterion) {
    let samples = samples();
    for (name, msg) in &samples {
        let bytes = encode(msg);
        println!("size {name}: {} B with the version byte", bytes.len());
        assert_eq!(&decode::<ShardMsg>(&bytes).unwrap(), msg);
    }
    let mut group = c.benchmark_group("wire");
    for (name, msg) in &samples {
        group.bench_function(format!("encode_decode/{name}"), |b| {
            b.iter(|| decode::<ShardMsg>(&encode(black_box(msg))).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, wire);
criterion_main!(benches);
