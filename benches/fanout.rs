//! The hot path without a network: one turntable game action decoded, sequenced by the
//! engine and fanned out to 1000 local subscribers (one encode, 1000 queue pushes of
//! the shared frame), plus the dialect's decode and encode on their own.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use turntable::engine::{ChannelCommand, Command, Engine, Event, Limits, Placement, ShardAddr};
use turntable::net::conns::{ConnTable, Framing};
use turntable::net::outbox::{MeshOut, ShardOutbox};
use turntable::net::queries::Pending;
use turntable::net::rate::RateLimit;
use turntable::protocol::DialectKind;
use turntable::protocol::turntable as v1;

const SUBSCRIBERS: usize = 1000;
const ACTION: &str = r#"{"command":"game","data":{"channel":"bench","actions":[{"timestamp":10223232,"from":"pub","data":{"strike_one":"1:1234"}}]}}"#;

fn fanout(c: &mut Criterion) {
    let mesh = MeshOut::new(Placement::single_node(1), 0);
    let pending = Pending::default();
    let mut conns = ConnTable::new(usize::MAX / 2, RateLimit::new(0, 1));
    let me = ShardAddr { node: 0, shard: 0 };
    let mut engine = Engine::new(me, Placement::single_node(1), Limits::default());
    let mut ids = Vec::new();
    for i in 0..=SUBSCRIBERS {
        let id = conns.insert(DialectKind::Turntable, Framing::Plain, None);
        engine.open(id);
        let user = if i == 0 {
            "pub".to_owned()
        } else {
            format!("sub{i}")
        };
        let mut out = ShardOutbox {
            conns: &mut conns,
            mesh: &mesh,
            pending: &pending,
            webhooks: None,
            cluster: None,
            origin: None,
        };
        engine.command(id, Command::Identify { user: user.into() }, &mut out);
        let join = Command::Channel(ChannelCommand::Join {
            channel: "bench".into(),
            invite: vec![],
            receipt: None,
        });
        engine.command(id, join, &mut out);
        ids.push(id);
    }
    let publisher = ids[0];
    let drain = |conns: &mut ConnTable| {
        for (_, slot) in conns.iter_mut() {
            slot.take_front(usize::MAX);
        }
    };
    drain(&mut conns);

    let mut group = c.benchmark_group("turntable");
    group.throughput(Throughput::Elements(SUBSCRIBERS as u64 + 1));
    group.bench_function("decode_engine_encode_fanout_1000", |b| {
        let mut buf = Vec::with_capacity(ACTION.len());
        let read = std::time::Instant::now();
        b.iter(|| {
            buf.clear();
            buf.extend_from_slice(ACTION.as_bytes());
            let cmd = v1::decode(&mut buf, Some("pub"), None, 1_700_000_000_000).unwrap();
            let mut out = ShardOutbox {
                conns: &mut conns,
                mesh: &mesh,
                pending: &pending,
                webhooks: None,
                cluster: None,
                origin: Some(read),
            };
            engine.command(publisher, cmd, &mut out);
            drain(&mut conns);
        })
    });
    group.finish();

    let mut group = c.benchmark_group("turntable_codec");
    group.bench_function("decode_game_action", |b| {
        let mut buf = Vec::with_capacity(ACTION.len());
        b.iter(|| {
            buf.clear();
            buf.extend_from_slice(ACTION.as_bytes());
            v1::decode(&mut buf, Some("pub"), None, 1_700_000_000_000).unwrap()
        })
    });
    let event = Event::Message {
        channel: "bench".into(),
        seq: 42,
        from: "pub".into(),
        data: r#"[{"timestamp":1700000000000,"client_timestamp":10223232,"from":"pub"}]"#.into(),
        skip: None,
    };
    group.bench_function("encode_game_message", |b| {
        let mut out = Vec::with_capacity(256);
        b.iter(|| {
            out.clear();
            v1::encode(&event, &mut out);
            out.len()
        })
    });
    group.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
