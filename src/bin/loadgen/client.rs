//! A minimal turntable v1 client for load: WebSocket over glommio with turntable's own
//! codec in client role (masked frames), reading many frames per system call.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd};
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use turntable::net::ws::{self, Decoder, Flow, Message, Opcode, Role};

/// The mask of every frame this client sends (clients must mask; any key will do).
const MASK: [u8; 4] = [7, 42, 99, 3];

/// One client connection.
pub struct Client {
    stream: TcpStream,
    decoder: Decoder,
    buf: Vec<u8>,
    filled: usize,
    out: Vec<u8>,
}

impl Client {
    /// Opens a WebSocket on `path` and reads the 101 response.
    pub async fn connect(addr: SocketAddr, path: &str) -> io::Result<Client> {
        let mut stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut client = Client {
            stream,
            decoder: Decoder::new(Role::Client, 1 << 20),
            buf: vec![0; 64 << 10],
            filled: 0,
            out: Vec::with_capacity(256),
        };
        loop {
            let n = client.stream.read(&mut client.buf[client.filled..]).await?;
            if n == 0 {
                return Err(io::Error::other("closed during handshake"));
            }
            client.filled += n;
            let head = &client.buf[..client.filled];
            if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                if !head.starts_with(b"HTTP/1.1 101") {
                    return Err(io::Error::other("upgrade refused"));
                }
                client.buf.copy_within(end + 4..client.filled, 0);
                client.filled -= end + 4;
                return Ok(client);
            }
        }
    }

    /// Sends one text message.
    pub async fn send(&mut self, text: &[u8]) -> io::Result<()> {
        self.encode(text);
        self.stream.write_all(&self.out).await
    }

    /// Sends the first half of a text message's frame and nothing more: what a client
    /// dropped mid-message leaves the server.
    pub async fn send_half(&mut self, text: &[u8]) -> io::Result<()> {
        self.encode(text);
        let half = self.out.len() / 2;
        self.stream.write_all(&self.out[..half]).await
    }

    /// Puts `text` in `out` as one masked text frame.
    fn encode(&mut self, text: &[u8]) {
        self.out.clear();
        ws::encode_frame(&mut self.out, Opcode::Text, text, Some(MASK));
    }

    /// Makes reads fail with `TimedOut` after `timeout` without data (`None`: never);
    /// nothing read is lost, so `recv` can be called again.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.stream
            .set_read_timeout(timeout)
            .map_err(io::Error::from)
    }

    /// Makes closing (dropping) the connection send a TCP reset, not a FIN
    /// (`SO_LINGER` of zero).
    pub fn reset_on_close(&self) -> io::Result<()> {
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: setsockopt reads `size_of::<linger>()` bytes from a live struct.
        let set = unsafe {
            libc::setsockopt(
                self.stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&linger as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            )
        };
        if set != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Reads at least once and calls `on_text` for every complete text message; pings
    /// are answered with pongs, as a live client does.
    pub async fn recv(&mut self, mut on_text: impl FnMut(&[u8])) -> io::Result<()> {
        let mut got = false;
        while !got {
            if self.filled > 0 {
                self.out.clear();
                let pongs = &mut self.out;
                let consumed = self
                    .decoder
                    .decode(&mut self.buf[..self.filled], |msg| {
                        match msg {
                            Message::Text(text) => {
                                got = true;
                                on_text(text);
                            }
                            Message::Ping(payload) => {
                                ws::encode_frame(pongs, Opcode::Pong, payload, Some(MASK))
                            }
                            _ => {}
                        }
                        Flow::Continue
                    })
                    .map_err(|e| io::Error::other(e.reason()))?;
                self.buf.copy_within(consumed..self.filled, 0);
                self.filled -= consumed;
                if !self.out.is_empty() {
                    self.stream.write_all(&self.out).await?;
                }
                if got {
                    break;
                }
            }
            let n = self.stream.read(&mut self.buf[self.filled..]).await?;
            if n == 0 {
                return Err(io::Error::other("server closed the connection"));
            }
            self.filled += n;
        }
        Ok(())
    }

    /// Hands the connection over to plain non-blocking I/O (for a reader thread): the
    /// socket, duplicated before this client closes its own descriptor, and the bytes
    /// already read past the last whole message.
    pub fn into_std(self) -> io::Result<(std::net::TcpStream, Vec<u8>)> {
        // SAFETY: dup has no memory-safety preconditions; the new descriptor is ours.
        let fd = unsafe { libc::dup(self.stream.as_raw_fd()) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is an open socket descriptor nobody else owns.
        let stream = unsafe { std::net::TcpStream::from_raw_fd(fd) };
        stream.set_nonblocking(true)?;
        Ok((stream, self.buf[..self.filled].to_vec()))
    }

    /// Reads text messages until one contains `needle`.
    pub async fn wait_for(&mut self, needle: &str) -> io::Result<()> {
        let mut found = false;
        while !found {
            self.recv(|text| found |= contains(text, needle.as_bytes()))
                .await?;
        }
        Ok(())
    }
}

/// Whether `haystack` contains `needle`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
