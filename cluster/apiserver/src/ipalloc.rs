//! Cluster IP allocation for Services from the service CIDR, with the messages
//! kube-apiserver's allocator gives when a requested IP is out of range or taken.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::sync::Mutex;

use rand::Rng;

/// The service IP range and the IPs handed out from it.
pub struct IpAllocator {
    cidr: String,
    base: u32,
    size: u32,
    used: Mutex<HashSet<u32>>,
}

impl IpAllocator {
    /// Parses an IPv4 CIDR such as "10.96.0.0/12".
    pub fn new(cidr: &str) -> anyhow::Result<IpAllocator> {
        let (address, prefix) = cidr
            .split_once('/')
            .ok_or_else(|| anyhow::anyhow!("service CIDR {cidr:?} has no prefix length"))?;
        let address: Ipv4Addr = address.parse()?;
        let prefix: u32 = prefix.parse()?;
        anyhow::ensure!(
            (8..=30).contains(&prefix),
            "service CIDR prefix /{prefix} out of range 8..=30"
        );
        let size = 1u32 << (32 - prefix);
        let base = u32::from(address) & !(size - 1);
        Ok(IpAllocator {
            cidr: cidr.to_string(),
            base,
            size,
            used: Mutex::new(HashSet::new()),
        })
    }

    /// The first usable IP of the range (the `kubernetes` Service's IP).
    pub fn first(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base + 1)
    }

    fn used(&self) -> std::sync::MutexGuard<'_, HashSet<u32>> {
        self.used.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reserves a specific IP; the error text is the real allocator's.
    pub fn allocate_specific(&self, ip: &str) -> Result<(), String> {
        let parsed: Ipv4Addr = ip.parse().map_err(|_| {
            format!("failed to allocate IP {ip}: the provided IP ({ip}) is not a valid IP")
        })?;
        let n = u32::from(parsed);
        if n <= self.base || n >= self.base + self.size - 1 {
            return Err(format!(
                "failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid range. The range of valid IPs is {}",
                self.cidr
            ));
        }
        if !self.used().insert(n) {
            return Err(format!(
                "failed to allocate IP {ip}: provided IP is already allocated"
            ));
        }
        Ok(())
    }

    /// Picks a free IP at random (as kube-apiserver does), avoiding the first one.
    pub fn allocate_any(&self) -> Result<String, String> {
        let mut used = self.used();
        let usable = self.size - 3;
        if used.len() as u32 >= usable {
            return Err("range is full".to_string());
        }
        let mut rng = rand::rng();
        let start = rng.random_range(0..usable);
        for offset in 0..usable {
            let candidate = self.base + 2 + (start + offset) % usable;
            if used.insert(candidate) {
                return Ok(Ipv4Addr::from(candidate).to_string());
            }
        }
        Err("range is full".to_string())
    }

    pub fn release(&self, ip: &str) {
        if let Ok(parsed) = ip.parse::<Ipv4Addr>() {
            self.used().remove(&u32::from(parsed));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_in_range_and_refuses_taken_or_outside() {
        let a = IpAllocator::new("10.96.0.0/12").unwrap();
        assert_eq!(a.first().to_string(), "10.96.0.1");
        a.allocate_specific("10.96.0.10").unwrap();
        assert!(
            a.allocate_specific("10.96.0.10")
                .unwrap_err()
                .contains("already allocated")
        );
        assert!(
            a.allocate_specific("10.0.0.1")
                .unwrap_err()
                .contains("not in the valid range")
        );
        let ip: Ipv4Addr = a.allocate_any().unwrap().parse().unwrap();
        assert_eq!(
            u32::from(ip) & 0xfff0_0000,
            u32::from(Ipv4Addr::new(10, 96, 0, 0))
        );
        a.release("10.96.0.10");
        a.allocate_specific("10.96.0.10").unwrap();
    }
}
