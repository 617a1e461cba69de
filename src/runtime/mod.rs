//! Thread-per-core bootstrap: one glommio executor per shard (pinned to its own core
//! unless told otherwise), all accepting on one port with SO_REUSEPORT, joined by the
//! channel mesh. [`start`] returns once every shard accepts; [`Server::stop`] (or a
//! signal, in the binary) drains them.

pub mod handover;
pub mod mesh;
pub mod shard;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{ExecutorJoinHandle, LocalExecutorBuilder, Placement};
use socket2::{Domain, Socket, Type};

use crate::config::Config;
use crate::net::metrics::NodeFigures;
use shard::ShardSetup;

/// io_uring entries per ring. Every idle connection keeps a poll request in the
/// kernel, and the kernel sizes the table it searches on each cancel (glommio cancels
/// and re-arms its timers often) by the ring: at glommio's default of 128 a cancel
/// walked ~1000 polls per bucket at 15 000 connections, 12% of the server's CPU while
/// connecting; 4096 gives the table its largest size (256 buckets).
const RING_DEPTH: usize = 4096;

/// Batches a mesh channel holds before a pump waits for the peer to catch up.
const MESH_CAPACITY: usize = 1024;

/// A running server: its address, and the handle to stop it.
pub struct Server {
    addr: SocketAddr,
    shards: usize,
    stop: Arc<AtomicBool>,
    executors: Vec<ExecutorJoinHandle<io::Result<()>>>,
}

impl Server {
    /// The address every shard accepts on (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn shards(&self) -> usize {
        self.shards
    }

    /// The flag that stops the server when set (signal handlers set it).
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Asks every shard to stop accepting and drain.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Waits for every shard to finish; the first shard error, if any.
    pub fn join(mut self) -> io::Result<()> {
        join_all(std::mem::take(&mut self.executors))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        let _ = join_all(std::mem::take(&mut self.executors));
    }
}

fn join_all(executors: Vec<ExecutorJoinHandle<io::Result<()>>>) -> io::Result<()> {
    let mut first_error = Ok(());
    for handle in executors {
        let result = match handle.join() {
            Ok(r) => r,
            Err(e) => Err(io::Error::other(format!("shard executor failed: {e}"))),
        };
        if first_error.is_ok() {
            first_error = result;
        }
    }
    first_error
}

/// Starts every shard and returns once all of them accept connections.
pub fn start(config: Config) -> io::Result<Server> {
    let config = Arc::new(config);
    // Port 0 would give each shard its own port: reserve one first (bound, not
    // listening, SO_REUSEPORT) and have every shard bind that.
    let reservation = reserve(config.listen)?;
    let addr = reservation.local_addr()?.as_socket().expect("an IP socket");
    let cores: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    if config.pin && cores.len() < config.shards {
        return Err(io::Error::other(format!(
            "invalid setting shards: {} pinned shards but {} usable cores",
            config.shards,
            cores.len()
        )));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let figures = Arc::new(NodeFigures::new(config.shards));
    let mesh = MeshBuilder::full(config.shards, MESH_CAPACITY);
    let handovers = MeshBuilder::full(config.shards, handover::CAPACITY);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let mut server = Server {
        addr,
        shards: config.shards,
        stop: stop.clone(),
        executors: Vec::new(),
    };
    for id in 0..config.shards {
        let placement = match cores.get(id) {
            Some(&core) if config.pin => Placement::Fixed(core),
            _ => Placement::Unbound,
        };
        let setup = ShardSetup {
            id,
            addr,
            config: config.clone(),
            mesh: mesh.clone(),
            handovers: handovers.clone(),
            figures: figures.clone(),
            stop: stop.clone(),
            ready: ready_tx.clone(),
        };
        let handle = LocalExecutorBuilder::new(placement)
            .name(&format!("shard-{id}"))
            .io_memory(config.io_memory)
            .ring_depth(RING_DEPTH)
            .spawn(move || shard::run(setup))
            .map_err(|e| io::Error::other(format!("cannot start shard {id}: {e}")))?;
        server.executors.push(handle);
    }
    drop(ready_tx);
    for _ in 0..config.shards {
        match ready_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(())) => {}
            Ok(Err(msg)) => return Err(io::Error::other(msg)),
            Err(_) => return Err(io::Error::other("a shard did not start")),
        }
    }
    drop(reservation);
    Ok(server)
}

fn reserve(addr: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_port(true)?;
    socket.set_reuse_address(true)?;
    socket
        .bind(&addr.into())
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    Ok(socket)
}
