//! The SocketCluster dialect's inbound parser, through the dialect contract: a connection fed
//! arbitrary messages (see `turntable_fuzz::run_dialect` for the input's shape), its
//! commands carried out on an engine and the events they bring encoded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use turntable::protocol::DialectKind;

fuzz_target!(|input: &[u8]| turntable_fuzz::run_dialect(DialectKind::SocketCluster, input));
