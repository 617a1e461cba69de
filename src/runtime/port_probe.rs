//! Whether some socket listens on an address, read from the kernel's tables
//! (`/proc/net/tcp`, `/proc/net/tcp6`): a bind can be refused by connections alone
//! (TIME_WAIT, FIN_WAIT2), which do not make the port anyone else's.

use std::net::{IpAddr, SocketAddr};

/// The kernel's code for a listening TCP socket in `/proc/net/tcp`.
const LISTEN: &str = "0A";

/// True if a TCP socket listens on `addr`'s port at its address or at the wildcard
/// address (or at any address, for a wildcard `addr`); true as well when the tables
/// cannot be read, so that the caller refuses rather than guesses.
pub fn listened_on(addr: SocketAddr) -> bool {
    let mut readable = false;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        readable = true;
        if text.lines().skip(1).any(|line| listens(line, addr)) {
            return true;
        }
    }
    !readable
}

/// Whether one line of a `/proc/net/tcp*` table is a listener that holds `addr`.
fn listens(line: &str, addr: SocketAddr) -> bool {
    let mut fields = line.split_whitespace();
    let (Some(local), Some(_remote), Some(state)) = (fields.nth(1), fields.next(), fields.next())
    else {
        return false;
    };
    let Some((ip, port)) = local.split_once(':') else {
        return false;
    };
    if state != LISTEN || u16::from_str_radix(port, 16) != Ok(addr.port()) {
        return false;
    }
    let wildcard = ip.bytes().all(|b| b == b'0');
    wildcard || addr.ip().is_unspecified() || parse_ip(ip) == Some(addr.ip())
}

/// An address as the tables write it: the 32-bit words in host (little-endian) order.
fn parse_ip(hex: &str) -> Option<IpAddr> {
    let words: Option<Vec<u32>> = (0..hex.len() / 8)
        .map(|i| u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16).ok())
        .collect();
    let bytes: Vec<u8> = words?.iter().flat_map(|w| w.to_le_bytes()).collect();
    match bytes.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => {
            let v6 = std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?);
            Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_kernels_lines() {
        let listener = "   1: 0100007F:1CE8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1";
        let waiting = "   2: 0100007F:1CE8 0100007F:8CAE 06 00000000:00000000 03:00000F5A 00000000     0        0 0 3";
        let addr: SocketAddr = "127.0.0.1:7400".parse().unwrap();
        assert!(listens(listener, addr));
        assert!(!listens(waiting, addr), "TIME_WAIT holds no port");
        assert!(!listens(listener, "127.0.0.2:7400".parse().unwrap()));
        assert!(listens(listener, "0.0.0.0:7400".parse().unwrap()));
        assert!(!listens(listener, "127.0.0.1:7401".parse().unwrap()));
    }

    #[test]
    fn sees_a_real_listener_and_not_a_free_port() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        assert!(listened_on(addr));
        drop(listener);
        assert!(!listened_on(addr));
    }
}
