//! A minimal turntable v1 client for load: WebSocket over glommio with turntable's own
//! codec in client role (masked frames), reading many frames per system call.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd};

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use turntable::net::ws::{self, Decoder, Flow, Message, Opcode, Role};

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
        self.out.clear();
        ws::encode_frame(&mut self.out, Opcode::Text, text, Some([7, 42, 99, 3]));
        self.stream.write_all(&self.out).await
    }

    /// Reads at least once and calls `on_text` for every complete text message.
    pub async fn recv(&mut self, mut on_text: impl FnMut(&[u8])) -> io::Result<()> {
        let mut got = false;
        while !got {
            if self.filled > 0 {
                let consumed = self
                    .decoder
                    .decode(&mut self.buf[..self.filled], |msg| {
                        if let Message::Text(text) = msg {
                            got = true;
                            on_text(text);
                        }
                        Flow::Continue
                    })
                    .map_err(|e| io::Error::other(e.reason()))?;
                self.buf.copy_within(consumed..self.filled, 0);
                self.filled -= consumed;
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
