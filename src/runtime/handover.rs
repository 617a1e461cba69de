//! Handing an HTTP connection to another shard. A SockJS session lives on the owner
//! shard of its id, but the kernel gives a polling request's connection to any shard;
//! the shard that read the request head passes the socket (a duplicated descriptor) and
//! the bytes it read to the session's shard over a channel mesh of its own, and that
//! shard serves the request as if it had accepted it. The client sees one connection;
//! no bytes are proxied between shards.

use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::rc::Rc;

use glommio::channels::channel_mesh::{Full, MeshBuilder, Senders};
use glommio::net::TcpStream;
use glommio::spawn_local;

use crate::engine::ShardId;
use crate::net::conn;
use crate::net::shard::{HandoverError, Shard};

/// Connections a handover channel holds; a handover beyond them is answered 503.
pub const CAPACITY: usize = 256;

/// A connection on its way to another shard: its socket and what was read from it.
pub struct Handover {
    socket: OwnedFd,
    read: Vec<u8>,
}

/// The mesh the shards hand connections over on.
pub type HandoverMesh = MeshBuilder<Handover, Full>;

/// Passes `stream` (with the bytes already read from it) to shard `to`. Fails if the
/// socket cannot be duplicated, or the peer's queue is full or closed (the caller
/// answers 503 rather than wait on a shard that is not keeping up).
pub fn hand_over(
    senders: &Senders<Handover>,
    to: ShardId,
    stream: &TcpStream,
    read: Vec<u8>,
) -> Result<(), HandoverError> {
    // SAFETY: dup() of a descriptor this stream owns and keeps open during the call.
    let fd = unsafe { libc::dup(stream.as_raw_fd()) };
    if fd < 0 {
        return Err(HandoverError::Duplicate(std::io::Error::last_os_error()));
    }
    // SAFETY: `fd` is a fresh descriptor nothing else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    senders
        .try_send_to(to, Handover { socket, read })
        .map_err(|_| HandoverError::Busy(to))
}

/// Serves every connection handed to this shard, until the mesh closes.
pub async fn receive(
    shard: Rc<Shard>,
    receiver: glommio::channels::shared_channel::ConnectedReceiver<Handover>,
) {
    while let Some(handover) = receiver.recv().await {
        // SAFETY: the descriptor is a TCP socket we own (see `hand_over`).
        let stream = unsafe { TcpStream::from_raw_fd(handover.socket.into_raw_fd()) };
        spawn_local(conn::serve(
            shard.clone(),
            stream,
            handover.read,
            conn::Admission::Settled,
        ))
        .detach();
    }
}
