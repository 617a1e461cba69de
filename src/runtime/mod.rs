//! Thread-per-core bootstrap: one glommio executor per shard (pinned to its own core
//! unless told otherwise), all accepting on one port with SO_REUSEPORT, joined by the
//! channel mesh. [`start`] returns once every shard accepts; [`Server::stop`] (or a
//! signal, in the binary) drains them.

pub mod handover;
pub mod mesh;
pub mod nodes;
mod port_probe;
pub mod shard;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{ExecutorJoinHandle, LocalExecutorBuilder, Placement};
use socket2::{Domain, Socket, Type};

use crate::cluster::{Cluster, ClusterError};
use crate::config::Config;
use crate::hooks::{Hooks, Webhooks};
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

/// How long the shards have to start accepting.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the server did not start: each names its cause and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Another process (or another turntable) already listens on the port.
    #[error(
        "cannot listen on {addr}: port {port} is already in use by another process \
         (find it with `ss -ltnp 'sport = :{port}'`); stop it, or choose another port with --listen",
        port = addr.port()
    )]
    PortInUse { addr: SocketAddr },
    /// Binding the address failed for another reason (no such local address, a
    /// privileged port).
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: io::Error },
    /// This node cannot join the cluster (another node list, its index taken).
    #[error("{0}")]
    Cluster(#[from] ClusterError),
    /// The thread that calls the application's backend could not start.
    #[error("cannot start the backend hook thread: {0}")]
    Hooks(io::Error),
    /// Pinning asked for more cores than the process may run on.
    #[error(
        "{shards} shards to pin but only {cores} usable CPUs: lower --shards to {cores} \
         or fewer, or pass --pin false"
    )]
    TooFewCpus { shards: usize, cores: usize },
    /// The locked-memory limit is below what glommio needs for a shard's io_uring.
    #[error(
        "not enough locked memory for io_uring: RLIMIT_MEMLOCK (ulimit -l) is {} KiB, \
         glommio needs at least {} KiB, and shards x io_memory ({io_memory} bytes each) \
         for registered buffers; raise the limit to {suggested} KiB or more: \
         `ulimit -l unlimited`, LimitMEMLOCK=infinity in a systemd unit, \
         `docker run --ulimit memlock=-1`, or memlock in /etc/security/limits.conf",
        limit / 1024,
        needed / 1024
    )]
    MemLock {
        limit: u64,
        needed: u64,
        io_memory: usize,
        suggested: u64,
    },
    /// The kernel refused to set up io_uring.
    #[error(
        "cannot set up io_uring ({source}): turntable needs Linux 5.8 or \
         later with io_uring allowed; check sysctl kernel.io_uring_disabled (must be 0), \
         and in Docker run with the repository's seccomp profile \
         (`--security-opt seccomp=deploy/seccomp.json`), which allows io_uring_setup, \
         io_uring_enter and io_uring_register"
    )]
    IoUringUnavailable { source: io::Error },
    /// A shard failed to start for a reason not recognised above.
    #[error("shard {shard} did not start: {cause}")]
    Shard { shard: usize, cause: String },
    /// A shard could not bind the address the others share.
    #[error("{0}")]
    ShardListen(#[from] shard::ListenError),
    /// The shards did not all report within [`START_TIMEOUT`].
    #[error("the shards did not start within {}s", START_TIMEOUT.as_secs())]
    Timeout,
}

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
///
/// On failure the shards that did start are told to stop but not waited for (a shard
/// waiting for a failed peer in the mesh would never finish).
pub fn start(config: Config) -> Result<Server, StartError> {
    let config = Arc::new(config);
    // Port 0 would give each shard its own port: reserve one first (bound, not
    // listening, SO_REUSEPORT) and have every shard bind that.
    let reservation = reserve(config.listen)?;
    let addr = reservation
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .unwrap_or(config.listen);
    let cores: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    if config.pin && cores.len() < config.shards {
        return Err(StartError::TooFewCpus {
            shards: config.shards,
            cores: cores.len(),
        });
    }
    preflight(&config)?;
    let webhook_settings = config.webhook_settings();
    let hooks = match config.calls_backend() || webhook_settings.is_some() {
        true => Some(Hooks::start(config.hook_settings()).map_err(StartError::Hooks)?),
        false => None,
    };
    let webhooks = hooks
        .as_ref()
        .zip(webhook_settings)
        .map(|(hooks, settings)| Webhooks::start(hooks, settings));
    let (cluster, mut cluster_inbound) = match config.cluster_settings() {
        Some(settings) => {
            let started = Cluster::start(settings, config.shards)?;
            (
                Some(started.cluster),
                started.inbound.into_iter().map(Some).collect(),
            )
        }
        None => (None, Vec::new()),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let figures = Arc::new(NodeFigures::new(config.shards, cluster.clone()));
    let connection_rate = Arc::new(config.connection_rate());
    if let Some(cluster) = &cluster {
        let figures = Arc::downgrade(&figures);
        cluster.report_stats(Box::new(move || figures.upgrade().map(|f| f.node_stats())));
    }
    let mesh = MeshBuilder::full(config.shards, MESH_CAPACITY);
    let handovers = MeshBuilder::full(config.shards, handover::CAPACITY);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (unstarted_tx, unstarted_rx) = std::sync::mpsc::channel();
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
            connection_rate: connection_rate.clone(),
            stop: stop.clone(),
            ready: ready_tx.clone(),
            hooks: hooks.clone(),
            webhooks: webhooks.clone(),
            cluster: cluster.clone(),
            cluster_inbound: cluster_inbound.get_mut(id).and_then(Option::take),
        };
        let unstarted = Unstarted {
            shard: id,
            report: Some(unstarted_tx.clone()),
        };
        let handle = LocalExecutorBuilder::new(placement)
            .name(&format!("shard-{id}"))
            .io_memory(config.io_memory)
            .ring_depth(RING_DEPTH)
            .spawn(move || {
                unstarted.started();
                shard::run(setup)
            })
            .map_err(|e| StartError::Shard {
                shard: id,
                cause: e.to_string(),
            })?;
        server.executors.push(handle);
    }
    drop(ready_tx);
    drop(unstarted_tx);
    let deadline = std::time::Instant::now() + START_TIMEOUT;
    let mut ready = 0;
    while ready < config.shards {
        if let Ok(shard) = unstarted_rx.try_recv() {
            let handle = server.executors.remove(shard);
            abandon(server);
            let cause = match handle.join() {
                Ok(Ok(())) => "it stopped at once".to_owned(),
                Ok(Err(e)) => e.to_string(),
                Err(e) => e.to_string(),
            };
            return Err(StartError::Shard { shard, cause });
        }
        let wait = deadline.saturating_duration_since(std::time::Instant::now());
        if wait.is_zero() {
            abandon(server);
            return Err(StartError::Timeout);
        }
        match ready_rx.recv_timeout(wait.min(Duration::from_millis(50))) {
            Ok(Ok(())) => ready += 1,
            Ok(Err(refused)) => {
                abandon(server);
                return Err(refused.into());
            }
            Err(_) => {}
        }
    }
    drop(reservation);
    figures.set_ready();
    Ok(server)
}

/// Gives up on a server that did not start: its shards are told to stop, but not
/// waited for (a shard waiting for a failed peer in the mesh would never finish).
fn abandon(server: Server) {
    server.stop();
    std::mem::forget(server);
}

/// Reports a shard whose executor was dropped before it ran the shard: glommio could
/// not build it (its error is in the executor's join handle).
struct Unstarted {
    shard: usize,
    report: Option<std::sync::mpsc::Sender<usize>>,
}

impl Unstarted {
    /// The executor runs the shard: nothing to report.
    fn started(mut self) {
        self.report = None;
    }
}

impl Drop for Unstarted {
    fn drop(&mut self) {
        if let Some(report) = self.report.take() {
            let _ = report.send(self.shard);
        }
    }
}

/// The least RLIMIT_MEMLOCK glommio starts an executor under (its reactor refuses to
/// start below it).
const GLOMMIO_MIN_MEMLOCK: u64 = 512 << 10;

/// Checks what every shard's executor needs of the machine before any is built, so a
/// refusal names its cause: the locked-memory limit and io_uring itself.
fn preflight(config: &Config) -> Result<(), StartError> {
    let wanted = (config.shards as u64) * (config.io_memory as u64);
    let suggested = wanted
        .max(GLOMMIO_MIN_MEMLOCK)
        .div_ceil(1024)
        .next_power_of_two();
    let limit = memlock_limit();
    if limit < GLOMMIO_MIN_MEMLOCK {
        return Err(StartError::MemLock {
            limit,
            needed: GLOMMIO_MIN_MEMLOCK,
            io_memory: config.io_memory,
            suggested,
        });
    }
    if limit < wanted {
        tracing::warn!(
            limit,
            wanted,
            "RLIMIT_MEMLOCK is below shards x io_memory: some shards will run without \
             registered io_uring buffers (slower); raise it to {suggested} KiB or more \
             (ulimit -l, LimitMEMLOCK=)"
        );
    }
    // On a thread of its own: the kernel tears a ring down with work queued to the
    // thread that made it, which would interrupt the caller's next blocking socket
    // call that has a timeout (EINTR), as the tests' clients found.
    std::thread::spawn(probe_io_uring)
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the io_uring probe panicked")))
        .map_err(|source| StartError::IoUringUnavailable { source })
}

/// The soft RLIMIT_MEMLOCK in bytes (`u64::MAX` when unlimited).
fn memlock_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit to the pointer it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) } != 0 {
        return u64::MAX;
    }
    limit.rlim_cur
}

/// Sets up (and closes) a one-entry io_uring, as each executor will: the kernel's
/// refusal, if any, with its errno (ENOSYS when not built in or filtered by seccomp,
/// as Docker's default profile does; EPERM under `kernel.io_uring_disabled`).
fn probe_io_uring() -> io::Result<()> {
    // struct io_uring_params is 120 bytes; zeroed asks for nothing special.
    let mut params = [0u64; 15];
    // SAFETY: io_uring_setup reads and writes one io_uring_params at the pointer.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 1u32, params.as_mut_ptr()) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is the descriptor io_uring_setup just returned, owned here.
    unsafe { libc::close(fd as libc::c_int) };
    Ok(())
}

/// Binds the address every shard will share. A probe without SO_REUSEPORT goes first:
/// the shards' own sockets would share the port with any other process's SO_REUSEPORT
/// listener (another turntable) and split its clients, where the probe is refused.
fn reserve(addr: SocketAddr) -> Result<Socket, StartError> {
    let listen = |source| StartError::Listen { addr, source };
    let in_use = |source: io::Error| match source.kind() {
        io::ErrorKind::AddrInUse => StartError::PortInUse { addr },
        _ => StartError::Listen { addr, source },
    };
    let probe = Socket::new(Domain::for_address(addr), Type::STREAM, None).map_err(listen)?;
    probe.set_reuse_address(true).map_err(listen)?;
    // The connections a killed predecessor accepted linger in TIME_WAIT for a minute
    // and refuse this bind too (glommio's listeners set no SO_REUSEADDR); only a
    // listener means another process serves the port.
    let bound = match probe.bind(&addr.into()) {
        Err(e) if e.kind() == io::ErrorKind::AddrInUse && !port_probe::listened_on(addr) => false,
        other => other.map(|()| true).map_err(in_use)?,
    };
    // With port 0 the probe picked the port: the shards share that one. A probe the
    // lingering connections kept from binding has no address of its own (it would
    // say 0.0.0.0:0, a random port on every interface): the port is `addr`'s.
    let picked = probe
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .filter(|_| bound)
        .unwrap_or(addr);
    drop(probe);
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None).map_err(listen)?;
    socket.set_reuse_port(true).map_err(listen)?;
    socket.set_reuse_address(true).map_err(listen)?;
    socket.bind(&picked.into()).map_err(in_use)?;
    Ok(socket)
}
