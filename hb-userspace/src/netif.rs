//! Interface lookups used by the media and the XDP loader: name <-> index,
//! addresses, broadcast addresses and MAC addresses (via `getifaddrs`, no
//! external tools).

use std::net::{IpAddr, Ipv4Addr};

/// Index of interface `name` in the current network namespace.
pub fn ifindex(name: &str) -> Option<u32> {
    nix::net::if_::if_nametoindex(name).ok().filter(|i| *i != 0)
}

/// Name of interface `index`.
pub fn ifname(index: u32) -> Option<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: buf has IF_NAMESIZE bytes as required.
    let p = unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: if_indextoname wrote a NUL-terminated string into buf.
    let s = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
    Some(s.to_string_lossy().into_owned())
}

/// One address of an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfAddr {
    pub ifname: String,
    pub addr: IpAddr,
    pub prefix_len: u8,
    pub broadcast: Option<Ipv4Addr>,
}

/// All IPv4/IPv6 addresses of all interfaces.
pub fn addresses() -> Vec<IfAddr> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for a in addrs {
        let Some(sa) = a.address else { continue };
        let (addr, prefix_len) = if let Some(v4) = sa.as_sockaddr_in() {
            let mask = a
                .netmask
                .and_then(|m| {
                    m.as_sockaddr_in()
                        .map(|m| u32::from(m.ip()).count_ones() as u8)
                })
                .unwrap_or(32);
            (IpAddr::V4(v4.ip()), mask)
        } else if let Some(v6) = sa.as_sockaddr_in6() {
            let mask = a
                .netmask
                .and_then(|m| {
                    m.as_sockaddr_in6()
                        .map(|m| u128::from(m.ip()).count_ones() as u8)
                })
                .unwrap_or(128);
            (IpAddr::V6(v6.ip()), mask)
        } else {
            continue;
        };
        let broadcast = a.broadcast.and_then(|b| b.as_sockaddr_in().map(|b| b.ip()));
        out.push(IfAddr {
            ifname: a.interface_name,
            addr,
            prefix_len,
            broadcast,
        });
    }
    out
}

/// The broadcast address of `addr/prefix`; `255.255.255.255` for /31 and
/// /32 networks, which have none.
pub fn subnet_broadcast(addr: Ipv4Addr, prefix: u8) -> Ipv4Addr {
    if prefix >= 31 {
        return Ipv4Addr::BROADCAST;
    }
    Ipv4Addr::from(u32::from(addr) | (u32::MAX >> prefix))
}

/// The IPv4 broadcast address of `ifname`'s first IPv4 address. When the
/// kernel has none (`ip addr add` without `brd`, where getifaddrs reports
/// the local address instead), it is computed from the prefix.
pub fn broadcast_v4(ifname: &str) -> Option<Ipv4Addr> {
    addresses()
        .into_iter()
        .filter(|a| a.ifname == ifname)
        .find_map(|a| match a.addr {
            IpAddr::V4(v4) => Some(match a.broadcast {
                Some(b) if b != v4 && !b.is_unspecified() => b,
                _ => subnet_broadcast(v4, a.prefix_len),
            }),
            IpAddr::V6(_) => None,
        })
}

/// Every address assigned to a local interface.
pub fn local_addrs() -> Vec<IpAddr> {
    addresses().into_iter().map(|a| a.addr).collect()
}

/// Whether `ip` is assigned to any local interface.
pub fn is_local(ip: IpAddr) -> bool {
    local_addrs().contains(&ip)
}

/// The MAC address of `ifname`, if it has one.
pub fn mac(ifname: &str) -> Option<[u8; 6]> {
    let addrs = nix::ifaddrs::getifaddrs().ok()?;
    for a in addrs {
        if a.interface_name != ifname {
            continue;
        }
        if let Some(ll) = a.address.as_ref().and_then(|s| s.as_link_addr()) {
            if let Some(m) = ll.addr() {
                return Some(m);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_known() {
        let idx = ifindex("lo").expect("lo exists");
        assert_eq!(ifname(idx).as_deref(), Some("lo"));
        assert!(ifindex("hb-no-such-if0").is_none());
        assert!(is_local(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    }

    #[test]
    fn computed_broadcasts() {
        let a: Ipv4Addr = "10.200.0.1".parse().unwrap();
        assert_eq!(
            subnet_broadcast(a, 24),
            "10.200.0.255".parse::<Ipv4Addr>().unwrap()
        );
        assert_eq!(
            subnet_broadcast(a, 8),
            "10.255.255.255".parse::<Ipv4Addr>().unwrap()
        );
        assert_eq!(subnet_broadcast(a, 31), Ipv4Addr::BROADCAST);
        assert_eq!(subnet_broadcast(a, 32), Ipv4Addr::BROADCAST);
    }
}
