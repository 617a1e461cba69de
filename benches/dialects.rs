//! The per-message cost of the Talker, World and SocketCluster dialects and of SockJS
//! framing (the MMOTD transport) without a network: decoding each dialect's typical
//! inbound hot-path message through its public entry point (Talker's `decode`, World's
//! and SocketCluster's `Session::on_text`, SockJS's client frame parser) and encoding
//! its typical outbound event (SockJS: a turntable message in an `a[...]` frame), plus
//! the OT transform an edit made against a stale revision costs on the document's owner
//! shard. `fanout.rs` covers the engine's fan-out and turntable v1; together they show a
//! regression in any dialect's hot path without sockets or a load generator.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use turntable::engine::Event;
use turntable::engine::ot::{Delta, Document, Op};
use turntable::protocol::{Action, socketcluster, sockjs, talker, world};

/// A chat line as the Talker web client sends it (~100 bytes).
const TALKER_MESSAGE: &str = r#"{"type":"message","content":"Has anyone tried the new build yet? The lobby loads twice as fast."}"#;

/// A World channel publication with a correlation id (~100 bytes).
const WORLD_SEND: &str = r#"["channel.send",17,{"channel":"lobby","data":{"kind":"move","x":412,"y":96,"facing":"north"}}]"#;

/// A World document edit: a word typed into the middle of the text (~100 bytes).
const WORLD_OT: &str = r#"["ot",18,{"document":"notes","variant":41,"ops":[{"retain":5000},{"insert":"hello "},{"delete":4}]}]"#;

/// A SocketCluster publication as `socketcluster-client` sends it (~100 bytes).
const SC_PUBLISH: &str = r##"{"event":"#publish","data":{"channel":"lobby","data":{"text":"gg, rematch?","from":"u42"}},"cid":7}"##;

/// A SockJS client frame (an `xhr_send` body or a WebSocket frame) carrying one
/// turntable game action (~100 bytes).
const SOCKJS_SEND: &str = r#"["{\"command\":\"game\",\"data\":{\"channel\":\"game:42\",\"actions\":[{\"x\":412,\"y\":96}]}}"]"#;

/// A turntable game message as a SockJS session's queue holds it (~100 bytes).
const SOCKJS_MESSAGE: &str = r#"{"command":"game","data":{"channel":"game:42","seq":1042,"actions":[{"from":"u42","x":412,"y":96}]}}"#;

/// Runs one inbound message through a session the way the connection does: the text is
/// copied into a reusable buffer (simd-json parses in place) and the last action is kept
/// (each of these messages makes exactly one).
macro_rules! feed {
    ($session:expr, $cx:expr, $buf:expr, $text:expr) => {{
        let buf: &mut Vec<u8> = $buf;
        buf.clear();
        buf.extend_from_slice($text.as_bytes());
        let mut last = None;
        $session.on_text(buf, $cx, &mut |a| last = Some(a));
        last
    }};
}

fn talker(c: &mut Criterion) {
    let mut group = c.benchmark_group("talker");
    group.throughput(Throughput::Elements(1));
    group.bench_function("decode_message", |b| {
        let mut buf = Vec::with_capacity(TALKER_MESSAGE.len());
        b.iter(|| {
            buf.clear();
            buf.extend_from_slice(black_box(TALKER_MESSAGE).as_bytes());
            talker::decode(&mut buf, true, None, false).unwrap()
        })
    });
    let event = Event::RoomMessage {
        id: 1042,
        content: "Has anyone tried the new build yet? The lobby loads twice as fast.".into(),
        brief: r#"{"id":"u42","name":"Ada"}"#.into(),
        time: 1_700_000_000_000,
        private: false,
        update: false,
    };
    group.bench_function("encode_room_message", |b| {
        let mut out = Vec::with_capacity(256);
        b.iter(|| {
            out.clear();
            talker::encode(black_box(&event), &mut out);
            out.len()
        })
    });
    group.finish();
}

fn world(c: &mut Criterion) {
    // An authenticated connection: the engine's record of it is what World reads.
    let cx = world::Context {
        backend_calls: false,
        backend_connect: false,
        identified: true,
        auth: None,
        max_connections_per_user: None,
        fault_injection: false,
    };
    let mut session = world::Session::new("default".into());
    let mut buf = Vec::with_capacity(128);
    for text in [WORLD_SEND, WORLD_OT] {
        let action = feed!(session, &cx, &mut buf, text);
        assert!(
            matches!(action, Some(Action::Engine(_))),
            "{text}: {action:?}"
        );
    }

    let mut group = c.benchmark_group("world");
    group.throughput(Throughput::Elements(1));
    group.bench_function("decode_channel_send", |b| {
        b.iter(|| feed!(session, &cx, &mut buf, black_box(WORLD_SEND)))
    });
    group.bench_function("decode_ot_edit", |b| {
        b.iter(|| feed!(session, &cx, &mut buf, black_box(WORLD_OT)))
    });
    let message = Event::Message {
        channel: "world:default:lobby".into(),
        seq: 4242,
        from: "u42".into(),
        data: r#"{"kind":"move","x":412,"y":96,"facing":"north"}"#.into(),
        skip: None,
    };
    group.bench_function("encode_channel_event", |b| {
        let mut out = Vec::with_capacity(256);
        b.iter(|| {
            out.clear();
            world::encode(black_box(&message), &mut out);
            out.len()
        })
    });
    let edited = Event::DocumentEdited {
        document: "world:default:ot:notes".into(),
        revision: 42,
        user: "u42".into(),
        delta: [Op::Retain(5000), Op::Insert("hello ".into()), Op::Delete(4)]
            .into_iter()
            .collect(),
        skip: None,
    };
    group.bench_function("encode_document_edited", |b| {
        let mut out = Vec::with_capacity(256);
        b.iter(|| {
            out.clear();
            world::encode(black_box(&edited), &mut out);
            out.len()
        })
    });
    group.finish();
}

fn socketcluster(c: &mut Criterion) {
    let cx = socketcluster::Context {
        backend_calls: false,
        auth: None,
        ping_timeout_ms: 20_000,
    };
    let mut session = socketcluster::Session::new(Box::from("AAAAAAAAAAAAAAAAAAAA"));
    let mut buf = Vec::with_capacity(128);
    let handshake = r##"{"event":"#handshake","data":{},"cid":1}"##;
    feed!(session, &cx, &mut buf, handshake);
    let action = feed!(session, &cx, &mut buf, SC_PUBLISH);
    assert!(matches!(action, Some(Action::Engine(_))), "{action:?}");

    let mut group = c.benchmark_group("socketcluster");
    group.throughput(Throughput::Elements(1));
    group.bench_function("decode_publish", |b| {
        b.iter(|| feed!(session, &cx, &mut buf, black_box(SC_PUBLISH)))
    });
    let message = Event::Message {
        channel: "lobby".into(),
        seq: 4242,
        from: "".into(),
        data: r#"{"text":"gg, rematch?","from":"u42"}"#.into(),
        skip: None,
    };
    group.bench_function("encode_publish", |b| {
        let mut out = Vec::with_capacity(256);
        b.iter(|| {
            out.clear();
            socketcluster::encode(black_box(&message), &mut out);
            out.len()
        })
    });
    group.finish();
}

/// The engine's history depth (`documents.rs` keeps 256 deltas per document).
const HISTORY: usize = 256;
/// Edits accepted since the incoming edit's base revision.
const STALE_BY: u64 = 16;

/// A 10 KB document with [`STALE_BY`] small edits accepted after revision 1, and the
/// base revision an edit made before them carries.
fn stale_document() -> (Document, u64) {
    let line = "The quick brown fox jumps over the lazy dog. ";
    let text: String = line.repeat(10 * 1024 / line.len());
    let mut doc = Document::new(HISTORY, 1 << 20);
    doc.submit(0, [Op::Insert(text)].into_iter().collect())
        .unwrap();
    let base = doc.revision();
    for i in 0..STALE_BY as usize {
        // Other clients typing a word here and there, each at its own latest revision.
        let edit: Delta = [
            Op::Retain(100 + i * 600),
            Op::Insert(format!("word{i} ")),
            Op::Delete(3),
        ]
        .into_iter()
        .collect();
        doc.submit(doc.revision(), edit).unwrap();
    }
    (doc, base)
}

fn ot(c: &mut Criterion) {
    let edit: Delta = [Op::Retain(5000), Op::Insert("hello ".into()), Op::Delete(4)]
        .into_iter()
        .collect();
    let mut group = c.benchmark_group("ot");
    group.throughput(Throughput::Elements(1));
    group.bench_function("submit_10kb_stale_16", |b| {
        b.iter_batched(
            || (stale_document(), edit.clone()),
            |((mut doc, base), edit)| {
                let result = doc.submit(base, edit).unwrap();
                (doc, result)
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn sockjs(c: &mut Criterion) {
    let mut group = c.benchmark_group("sockjs");
    group.throughput(Throughput::Elements(1));
    group.bench_function("decode_send", |b| {
        b.iter(|| sockjs::parse_client_frame(black_box(SOCKJS_SEND).as_bytes()).unwrap())
    });
    group.bench_function("encode_message", |b| {
        let mut out = Vec::with_capacity(256);
        b.iter(|| {
            out.clear();
            sockjs::write_message(&mut out, black_box(SOCKJS_MESSAGE).as_bytes());
            out.len()
        })
    });
    group.finish();
}

criterion_group!(benches, talker, world, socketcluster, sockjs, ot);
criterion_main!(benches);
