//! How many new connections one client address may open: a token bucket per address
//! (`connection_rate` a second, up to `connection_burst` at once), shared by every
//! shard of the process, since the kernel spreads one address's connections over all
//! of them. A connection over the budget is answered `429 Too Many Requests` (with
//! `Retry-After`) once its request head arrives; one from an address that goes on
//! past a further burst is closed at once, unread. IPv6 addresses count by their /64,
//! the block one subscriber usually holds. Addresses in `connection_rate_exempt` (a
//! reverse proxy's, say: every connection through it comes from it) are not counted.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::Instant;

use super::rate::{Admit, Budget, RateLimit};

/// Addresses tracked at once; when full, those whose bucket has refilled are
/// forgotten (they are as good as new), and if none has, the newcomer goes untracked.
const MAX_TRACKED: usize = 65_536;

/// The process's per-address limit on new connections (see the module doc).
#[derive(Debug)]
pub struct ConnectionRate {
    limit: RateLimit,
    exempt: Box<[Cidr]>,
    buckets: Mutex<HashMap<IpAddr, Budget>>,
}

impl ConnectionRate {
    /// `per_second` new connections a second from one address, `burst` at once;
    /// `per_second` 0 is no limit. Addresses in `exempt` are never limited.
    pub fn new(per_second: usize, burst: usize, exempt: Vec<Cidr>) -> ConnectionRate {
        ConnectionRate {
            limit: RateLimit::new(per_second, burst),
            exempt: exempt.into_boxed_slice(),
            buckets: Mutex::default(),
        }
    }

    /// Whether a connection from `peer`, accepted `now`, may be served.
    pub fn admit(&self, peer: IpAddr, now: Instant) -> Admit {
        if self.limit.is_off() || self.exempt.iter().any(|cidr| cidr.contains(peer)) {
            return Admit::Yes;
        }
        let key = bucket_of(peer);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(&key) {
            buckets.retain(|_, budget| !self.limit.is_rested(budget, now));
            if buckets.len() >= MAX_TRACKED {
                return Admit::Yes;
            }
        }
        let budget = buckets.entry(key).or_insert_with(|| self.limit.fresh(now));
        self.limit.admit(budget, now)
    }

    /// Gives back the token a connection from `peer` spent (an application server's
    /// authorized API call: it is not a flood, however many connections it opens).
    pub fn give_back(&self, peer: IpAddr, now: Instant) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(budget) = buckets.get_mut(&bucket_of(peer)) {
            self.limit.give_back(budget, now);
        }
    }
}

/// The address a connection from `peer` counts against: IPv4 as it is (an
/// IPv4-mapped IPv6 address as its IPv4 one), IPv6 by its /64.
fn bucket_of(peer: IpAddr) -> IpAddr {
    match canonical(peer) {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !(u128::MAX >> 64))),
        v4 => v4,
    }
}

/// `address` with an IPv4-mapped IPv6 address as its IPv4 one.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        IpAddr::V4(_) => address,
    }
}

/// A block of addresses: `10.0.0.0/8`, `fd00::/8`, or one address (`127.0.0.1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// Why a block of addresses was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is not an address block: ADDRESS or ADDRESS/PREFIX, as 10.0.0.0/8 or ::1")]
pub struct CidrError(pub String);

impl std::str::FromStr for Cidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Cidr, CidrError> {
        let refuse = || CidrError(text.to_owned());
        let (address, prefix) = match text.trim().split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text.trim(), None),
        };
        let network: IpAddr = address.parse().map_err(|_| refuse())?;
        let width = match network {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        let prefix = match prefix {
            Some(prefix) => prefix.parse::<u8>().ok().filter(|p| *p <= width),
            None => Some(width),
        }
        .ok_or_else(refuse)?;
        Ok(Cidr { network, prefix })
    }
}

impl Cidr {
    /// Whether `address` is in this block (an IPv4-mapped IPv6 address counts as its
    /// IPv4 one).
    pub fn contains(&self, address: IpAddr) -> bool {
        match (self.network, canonical(address)) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                net.to_bits() & mask == a.to_bits() & mask
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                net.to_bits() & mask == a.to_bits() & mask
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_address_gets_its_burst_then_refusals_then_closes() {
        let rate = ConnectionRate::new(1, 3, Vec::new());
        let now = Instant::now();
        let outcomes: Vec<Admit> = (0..7).map(|_| rate.admit(ip("192.0.2.1"), now)).collect();
        use Admit::*;
        assert_eq!(outcomes, [Yes, Yes, Yes, Refuse, Refuse, Refuse, Close]);
        assert_eq!(rate.admit(ip("192.0.2.2"), now), Yes, "another address");
        let later = now + Duration::from_secs(60);
        assert_eq!(rate.admit(ip("192.0.2.1"), later), Yes, "refilled");
    }

    #[test]
    fn a_token_given_back_is_spent_again() {
        let rate = ConnectionRate::new(1, 2, Vec::new());
        let now = Instant::now();
        let peer = ip("192.0.2.1");
        for _ in 0..10 {
            assert_eq!(rate.admit(peer, now), Admit::Yes);
            rate.give_back(peer, now);
        }
        assert_eq!(rate.admit(peer, now), Admit::Yes);
        assert_eq!(rate.admit(peer, now), Admit::Yes);
        assert_eq!(
            rate.admit(peer, now),
            Admit::Refuse,
            "no more than the burst"
        );
        rate.give_back(ip("192.0.2.9"), now); // untracked: nothing to give back
        assert_eq!(rate.buckets.lock().unwrap().len(), 1);
    }

    #[test]
    fn ipv6_counts_by_its_64_and_mapped_ipv4_as_ipv4() {
        let rate = ConnectionRate::new(1, 1, Vec::new());
        let now = Instant::now();
        assert_eq!(rate.admit(ip("2001:db8:1:2::1"), now), Admit::Yes);
        assert_eq!(rate.admit(ip("2001:db8:1:2::ffff"), now), Admit::Refuse);
        assert_eq!(rate.admit(ip("2001:db8:1:3::1"), now), Admit::Yes);
        assert_eq!(rate.admit(ip("198.51.100.7"), now), Admit::Yes);
        assert_eq!(rate.admit(ip("::ffff:198.51.100.7"), now), Admit::Refuse);
    }

    #[test]
    fn exempt_blocks_and_a_zero_rate_are_never_limited() {
        let exempt = vec!["10.0.0.0/8".parse().unwrap(), "::1".parse().unwrap()];
        let rate = ConnectionRate::new(1, 1, exempt);
        let now = Instant::now();
        for _ in 0..10 {
            assert_eq!(rate.admit(ip("10.200.3.4"), now), Admit::Yes);
            assert_eq!(rate.admit(ip("::1"), now), Admit::Yes);
        }
        let off = ConnectionRate::new(0, 1, Vec::new());
        for _ in 0..10 {
            assert_eq!(off.admit(ip("192.0.2.1"), now), Admit::Yes);
        }
    }

    #[test]
    fn a_full_table_forgets_rested_addresses_first() {
        let rate = ConnectionRate::new(1000, 1, Vec::new());
        let now = Instant::now();
        for i in 0..MAX_TRACKED as u32 {
            rate.admit(IpAddr::V4(std::net::Ipv4Addr::from_bits(i)), now);
        }
        let later = now + Duration::from_secs(1);
        assert_eq!(rate.admit(ip("192.0.2.1"), later), Admit::Yes);
        assert_eq!(rate.admit(ip("192.0.2.1"), later), Admit::Refuse);
        assert_eq!(rate.buckets.lock().unwrap().len(), 1);
    }

    #[test]
    fn blocks_parse_and_match() {
        let block: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(block.contains(ip("10.1.255.3")));
        assert!(!block.contains(ip("10.2.0.1")));
        assert!(block.contains(ip("::ffff:10.1.0.9")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.9")));
        assert!(!all.contains(ip("2001:db8::1")));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")));
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "example.com",
            "10.0.0.0/x",
            "1.2.3/8",
        ] {
            assert_eq!(bad.parse::<Cidr>(), Err(CidrError(bad.to_owned())), "{bad}");
        }
    }
}
