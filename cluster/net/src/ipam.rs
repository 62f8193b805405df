//! Pod IP allocation from the pod CIDR, in memory, like CNI's host-local plugin: addresses are
//! handed out in order after the last one given (so a just-released IP is not reused at once,
//! which would confuse anything still caching the old pod's address), skipping the network
//! address, the gateway and the broadcast address.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use anyhow::{Context, Result, bail};

/// An IPv4 network such as `10.244.0.0/16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Cidr {
    pub network: Ipv4Addr,
    pub prefix_len: u8,
}

impl Ipv4Cidr {
    /// Parses `a.b.c.d/n`; host bits must be zero.
    pub fn parse(text: &str) -> Result<Ipv4Cidr> {
        let (address, prefix) = text
            .split_once('/')
            .with_context(|| format!("{text:?} is not a CIDR (a.b.c.d/n)"))?;
        let network: Ipv4Addr = address
            .parse()
            .with_context(|| format!("{address:?} in {text:?} is not an IPv4 address"))?;
        let prefix_len: u8 = prefix
            .parse()
            .with_context(|| format!("{prefix:?} in {text:?} is not a prefix length"))?;
        if !(8..=30).contains(&prefix_len) {
            bail!("prefix length of {text:?} must be between 8 and 30");
        }
        let cidr = Ipv4Cidr {
            network,
            prefix_len,
        };
        if u32::from(network) & !cidr.mask() != 0 {
            bail!("{text:?} has host bits set");
        }
        Ok(cidr)
    }

    fn mask(&self) -> u32 {
        u32::MAX << (32 - u32::from(self.prefix_len))
    }

    /// The first host address, used as the gateway (`10.244.0.1` for `10.244.0.0/16`).
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !self.mask())
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network)
    }
}

impl std::fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

/// The allocator: which pod IPs are in use, and where the next search starts.
#[derive(Debug)]
pub struct IpAllocator {
    cidr: Ipv4Cidr,
    in_use: BTreeSet<Ipv4Addr>,
    last: Ipv4Addr,
}

impl IpAllocator {
    pub fn new(cidr: Ipv4Cidr) -> IpAllocator {
        IpAllocator {
            cidr,
            in_use: BTreeSet::new(),
            last: cidr.gateway(),
        }
    }

    /// The next free address after the last one handed out, wrapping around once.
    pub fn allocate(&mut self) -> Result<Ipv4Addr> {
        let first = u32::from(self.cidr.gateway()) + 1;
        let end = u32::from(self.cidr.broadcast()); // exclusive
        let size = end - first;
        let start = u32::from(self.last).clamp(first - 1, end - 1) + 1;
        for step in 0..size {
            let mut candidate = start + step;
            if candidate >= end {
                candidate = first + (candidate - end);
            }
            let ip = Ipv4Addr::from(candidate);
            if !self.in_use.contains(&ip) {
                self.in_use.insert(ip);
                self.last = ip;
                return Ok(ip);
            }
        }
        bail!("no free IP address left in {}", self.cidr)
    }

    /// Gives an address back; releasing one not in use is harmless.
    pub fn release(&mut self, ip: Ipv4Addr) {
        self.in_use.remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects_cidrs() {
        let cidr = Ipv4Cidr::parse("10.244.0.0/16").unwrap();
        assert_eq!(cidr.gateway(), Ipv4Addr::new(10, 244, 0, 1));
        assert!(cidr.contains(Ipv4Addr::new(10, 244, 200, 3)));
        assert!(!cidr.contains(Ipv4Addr::new(10, 245, 0, 3)));
        assert!(Ipv4Cidr::parse("10.244.0.1/16").is_err());
        assert!(Ipv4Cidr::parse("10.244.0.0").is_err());
        assert!(Ipv4Cidr::parse("10.244.0.0/33").is_err());
    }

    #[test]
    fn allocates_in_order_skipping_network_gateway_and_broadcast() {
        let mut ipam = IpAllocator::new(Ipv4Cidr::parse("10.1.0.0/29").unwrap());
        let all: Vec<Ipv4Addr> = (0..5).map(|_| ipam.allocate().unwrap()).collect();
        assert_eq!(
            all,
            (2..=6)
                .map(|last| Ipv4Addr::new(10, 1, 0, last))
                .collect::<Vec<_>>()
        );
        assert!(ipam.allocate().is_err(), "only .2 to .6 are hosts");
        ipam.release(Ipv4Addr::new(10, 1, 0, 3));
        assert_eq!(ipam.allocate().unwrap(), Ipv4Addr::new(10, 1, 0, 3));
    }

    #[test]
    fn does_not_reuse_a_released_address_at_once() {
        let mut ipam = IpAllocator::new(Ipv4Cidr::parse("10.244.0.0/16").unwrap());
        let first = ipam.allocate().unwrap();
        assert_eq!(first, Ipv4Addr::new(10, 244, 0, 2));
        ipam.release(first);
        assert_eq!(ipam.allocate().unwrap(), Ipv4Addr::new(10, 244, 0, 3));
    }
}
