//! The one system call the runtime makes itself: a vectored, non-blocking send, so a
//! connection's queued frames leave in one `sendmsg` instead of one `send` each.

use std::io::{self, IoSlice};
use std::os::fd::RawFd;

/// Sends as much of `bufs` as the socket takes right now, without blocking and without
/// raising SIGPIPE. `WouldBlock` means nothing was sent.
pub fn send_vectored(fd: RawFd, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    // SAFETY: an all-zero msghdr is valid; IoSlice is guaranteed ABI-compatible with
    // iovec on Unix, and the slices outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = bufs.len() as _;
    let sent = unsafe { libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
    if sent < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(sent as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn sends_all_slices_in_order() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let n = send_vectored(a.as_raw_fd(), &[IoSlice::new(b"he"), IoSlice::new(b"llo")]).unwrap();
        assert_eq!(n, 5);
        let mut got = [0u8; 5];
        b.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello");
    }

    #[test]
    fn a_full_socket_would_block() {
        let (a, _b) = UnixStream::pair().unwrap();
        let chunk = vec![0u8; 1 << 16];
        let err = loop {
            match send_vectored(a.as_raw_fd(), &[IoSlice::new(&chunk)]) {
                Ok(_) => continue,
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    }
}
