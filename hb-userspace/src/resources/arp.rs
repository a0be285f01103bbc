//! Announcing moved addresses: gratuitous ARP for IPv4 (a broadcast ARP
//! request *and* reply per round, as Heartbeat's send_arp does, since
//! switches and hosts differ in which one they honour) and unsolicited
//! neighbour advertisements (override flag) for IPv6. Sent on raw sockets,
//! `count` rounds `interval` apart.

use std::{
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    time::Duration,
};

use super::ipaddr::Addr;

const ETH_P_ARP: u16 = 0x0806;

/// An ARP frame for `ip` from `mac`: op 1 = request, 2 = reply.
pub fn arp_frame(mac: [u8; 6], ip: Ipv4Addr, op: u16) -> [u8; 42] {
    let mut f = [0u8; 42];
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&ETH_P_ARP.to_be_bytes());
    f[14..16].copy_from_slice(&1u16.to_be_bytes()); // Ethernet
    f[16..18].copy_from_slice(&0x0800u16.to_be_bytes()); // IPv4
    f[18] = 6;
    f[19] = 4;
    f[20..22].copy_from_slice(&op.to_be_bytes());
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&ip.octets());
    if op == 2 {
        f[32..38].copy_from_slice(&mac);
    }
    f[38..42].copy_from_slice(&ip.octets());
    f
}

/// An unsolicited neighbour advertisement body (ICMPv6; the kernel fills
/// in the checksum on raw ICMPv6 sockets).
pub fn na_message(mac: [u8; 6], ip: Ipv6Addr) -> [u8; 32] {
    let mut m = [0u8; 32];
    m[0] = 136; // neighbour advertisement
    m[4] = 0x20; // Override
    m[8..24].copy_from_slice(&ip.octets());
    m[24] = 2; // target link-layer address option
    m[25] = 1; // length in units of 8 bytes
    m[26..32].copy_from_slice(&mac);
    m
}

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

struct Sockets {
    packet: Option<OwnedFd>,
    icmp6: Option<OwnedFd>,
}

impl Sockets {
    fn packet(&mut self) -> io::Result<&OwnedFd> {
        if self.packet.is_none() {
            // SAFETY: plain socket(2); the fd is owned right away.
            let fd = check(unsafe {
                libc::socket(libc::AF_PACKET, libc::SOCK_RAW, (ETH_P_ARP).to_be() as i32)
            })?;
            self.packet = Some(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        Ok(self.packet.as_ref().unwrap())
    }

    fn icmp6(&mut self) -> io::Result<&OwnedFd> {
        if self.icmp6.is_none() {
            // SAFETY: plain socket(2); the fd is owned right away.
            let fd = check(unsafe {
                libc::socket(libc::AF_INET6, libc::SOCK_RAW, libc::IPPROTO_ICMPV6)
            })?;
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            let hops: libc::c_int = 255; // required for ND messages
                                         // SAFETY: valid option pointer and length.
            check(unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::IPPROTO_IPV6,
                    libc::IPV6_MULTICAST_HOPS,
                    &hops as *const _ as *const libc::c_void,
                    4,
                )
            })?;
            self.icmp6 = Some(fd);
        }
        Ok(self.icmp6.as_ref().unwrap())
    }

    fn send_arp(&mut self, ifindex: u32, frame: &[u8]) -> io::Result<()> {
        let fd = self.packet()?.as_raw_fd();
        // SAFETY: zeroed sockaddr_ll is valid; fields set below.
        let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sa.sll_family = libc::AF_PACKET as u16;
        sa.sll_protocol = ETH_P_ARP.to_be();
        sa.sll_ifindex = ifindex as i32;
        sa.sll_halen = 6;
        sa.sll_addr[..6].copy_from_slice(&[0xff; 6]);
        // SAFETY: frame and sockaddr are valid for the given lengths.
        check(unsafe {
            libc::sendto(
                fd,
                frame.as_ptr() as *const libc::c_void,
                frame.len(),
                0,
                &sa as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            ) as i32
        })?;
        Ok(())
    }

    fn send_na(&mut self, ifindex: u32, msg: &[u8]) -> io::Result<()> {
        let fd = self.icmp6()?.as_raw_fd();
        // SAFETY: zeroed sockaddr_in6 is valid; fields set below.
        let mut sa: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
        sa.sin6_family = libc::AF_INET6 as u16;
        sa.sin6_addr.s6_addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1).octets();
        sa.sin6_scope_id = ifindex;
        let idx = ifindex as libc::c_int;
        // SAFETY: valid option pointer and length.
        check(unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_IPV6,
                libc::IPV6_MULTICAST_IF,
                &idx as *const _ as *const libc::c_void,
                4,
            )
        })?;
        // SAFETY: msg and sockaddr are valid for the given lengths.
        check(unsafe {
            libc::sendto(
                fd,
                msg.as_ptr() as *const libc::c_void,
                msg.len(),
                0,
                &sa as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_in6>() as u32,
            ) as i32
        })?;
        Ok(())
    }
}

/// Sends one round of announcements for `addrs`; returns how many were sent
/// and the first error (interfaces without a MAC, e.g. `lo`, are skipped).
pub fn announce_once(addrs: &[Addr]) -> (usize, Option<io::Error>) {
    let mut socks = Sockets {
        packet: None,
        icmp6: None,
    };
    let mut sent = 0;
    let mut first_err = None;
    let mut macs: Vec<(u32, Option<[u8; 6]>)> = Vec::new();
    for a in addrs {
        let mac = match macs.iter().find(|(i, _)| *i == a.ifindex) {
            Some((_, m)) => *m,
            None => {
                let m = crate::netif::mac(&a.ifname).filter(|m| *m != [0; 6]);
                macs.push((a.ifindex, m));
                m
            }
        };
        let Some(mac) = mac else { continue };
        let r = match a.addr {
            IpAddr::V4(v4) => socks
                .send_arp(a.ifindex, &arp_frame(mac, v4, 1))
                .and_then(|_| socks.send_arp(a.ifindex, &arp_frame(mac, v4, 2))),
            IpAddr::V6(v6) => socks.send_na(a.ifindex, &na_message(mac, v6)),
        };
        match r {
            Ok(()) => sent += 1,
            Err(e) => {
                if first_err.is_none() {
                    first_err = Some(e);
                }
            }
        }
    }
    (sent, first_err)
}

/// Sends `count` rounds `interval` apart: the first one now (so failover
/// completes only once clients have been told), the rest in the background.
pub async fn announce(addrs: Vec<Addr>, count: u32, interval: Duration) {
    if count == 0 || addrs.is_empty() {
        return;
    }
    let first = addrs.clone();
    let (n, err) = tokio::task::spawn_blocking(move || announce_once(&first))
        .await
        .unwrap_or((0, None));
    if let Some(e) = err {
        log::warn!(
            "gratuitous ARP/NA: {e} ({n} of {} addresses announced)",
            addrs.len()
        );
    }
    if count > 1 {
        tokio::spawn(async move {
            for _ in 1..count {
                tokio::time::sleep(interval).await;
                let a = addrs.clone();
                let _ = tokio::task::spawn_blocking(move || announce_once(&a)).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arp_frames_byte_exact() {
        let mac = [2, 0, 0, 0, 0, 9];
        let req = arp_frame(mac, "10.0.0.10".parse().unwrap(), 1);
        assert_eq!(
            &req[..14],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 9, 0x08, 0x06]
        );
        assert_eq!(&req[14..22], &[0, 1, 8, 0, 6, 4, 0, 1]);
        assert_eq!(
            &req[22..42],
            &[2, 0, 0, 0, 0, 9, 10, 0, 0, 10, 0, 0, 0, 0, 0, 0, 10, 0, 0, 10]
        );
        let rep = arp_frame(mac, "10.0.0.10".parse().unwrap(), 2);
        assert_eq!(&rep[20..22], &[0, 2]);
        assert_eq!(&rep[32..38], &mac, "reply names our MAC as target too");
    }

    #[test]
    fn na_byte_exact() {
        let m = na_message([2, 0, 0, 0, 0, 9], "fd00::10".parse().unwrap());
        assert_eq!(m[0], 136);
        assert_eq!(&m[4..8], &[0x20, 0, 0, 0], "override, not solicited");
        assert_eq!(&m[8..10], &[0xfd, 0]);
        assert_eq!(&m[24..32], &[2, 1, 2, 0, 0, 0, 0, 9]);
    }
}
