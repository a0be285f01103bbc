//! UDP heartbeat media: broadcast, multicast (IPv4/IPv6) and unicast
//! (IPv4/IPv6), as in Heartbeat's bcast/mcast/mcast6/ucast/ucast6 plugins.
//!
//! Receiving: one socket per (interface, address family), bound to the
//! heartbeat port on that device only, with kernel receive timestamps
//! (`SO_TIMESTAMPNS`) and packet info (destination address, interface), and
//! joined to the multicast groups of that interface.
//!
//! Sending: one socket per medium, bound to its device, low-delay TOS and
//! interactive priority. A `ucast` line naming one of our own addresses is
//! skipped, so the same ha.cf works on every node (as in Heartbeat).

use std::{
    io::{self, IoSliceMut},
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket},
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
};

use nix::sys::socket::{
    self, bind, recvmsg, setsockopt, sockopt, AddressFamily, ControlMessageOwned, MsgFlags,
    SockFlag, SockType, SockaddrIn, SockaddrIn6, SockaddrStorage,
};

use crate::{
    config::{Medium, MediumDef},
    netif,
    time::Mono,
};

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("ha.cf line {line}: `{medium}`: interface `{ifname}` does not exist")]
    NoInterface {
        line: usize,
        medium: String,
        ifname: String,
    },
    #[error("ha.cf line {line}: `{medium}`: interface `{ifname}` has no IPv4 broadcast address (give it an IPv4 address, or use ucast/mcast)")]
    NoBroadcast {
        line: usize,
        medium: String,
        ifname: String,
    },
    #[error("{what} on {ifname}: {err}")]
    Socket {
        what: String,
        ifname: String,
        err: io::Error,
    },
}

fn raw_setsockopt<T>(fd: &impl AsRawFd, level: i32, name: i32, v: &T) -> io::Result<()> {
    // SAFETY: `v` is a valid T for the given option (callers pass the types
    // the kernel expects); the size matches.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            v as *const T as *const libc::c_void,
            std::mem::size_of::<T>() as u32,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn sock_err(what: impl Into<String>, ifname: &str) -> impl FnOnce(nix::Error) -> MediaError + '_ {
    let what = what.into();
    move |e| MediaError::Socket {
        what,
        ifname: ifname.to_string(),
        err: io::Error::from(e),
    }
}

fn io_err(what: impl Into<String>, ifname: &str) -> impl FnOnce(io::Error) -> MediaError + '_ {
    let what = what.into();
    move |err| MediaError::Socket {
        what,
        ifname: ifname.to_string(),
        err,
    }
}

fn family_of(m: &Medium) -> Option<AddressFamily> {
    match m {
        Medium::Bcast { .. } => Some(AddressFamily::Inet),
        Medium::Mcast { group, .. } => Some(if group.is_ipv4() {
            AddressFamily::Inet
        } else {
            AddressFamily::Inet6
        }),
        Medium::Ucast { peer, .. } => Some(if peer.is_ipv4() {
            AddressFamily::Inet
        } else {
            AddressFamily::Inet6
        }),
        Medium::Serial { .. } => None,
    }
}

fn check_if(m: &MediumDef, ifname: &str) -> Result<u32, MediaError> {
    netif::ifindex(ifname).ok_or_else(|| MediaError::NoInterface {
        line: m.line,
        medium: m.medium.describe(),
        ifname: ifname.to_string(),
    })
}

/// A receiving socket.
pub struct RxSocket {
    pub sock: UdpSocket,
    pub ifname: String,
    pub ifindex: u32,
}

/// A datagram with its metadata.
#[derive(Clone, Debug)]
pub struct Datagram {
    pub data: Vec<u8>,
    pub src: SocketAddr,
    pub dst: Option<IpAddr>,
    pub ifindex: u32,
    /// `SO_TIMESTAMPNS` (CLOCK_REALTIME ns).
    pub kernel_ts: Option<u64>,
    /// When userspace read it.
    pub read_at: Mono,
}

/// Opens the receive sockets for every UDP medium.
pub fn open_receivers(media: &[MediumDef], port: u16) -> Result<Vec<RxSocket>, MediaError> {
    let mut out: Vec<(RxSocket, AddressFamily)> = Vec::new();
    for m in media {
        let (Some(ifname), Some(fam)) = (m.medium.ifname(), family_of(&m.medium)) else {
            continue;
        };
        let ifindex = check_if(m, ifname)?;
        let pos = match out
            .iter()
            .position(|(r, f)| r.ifname == ifname && *f == fam)
        {
            Some(p) => p,
            None => {
                let fd = socket::socket(
                    fam,
                    SockType::Datagram,
                    SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
                    None,
                )
                .map_err(sock_err("socket", ifname))?;
                setsockopt(&fd, sockopt::ReuseAddr, &true)
                    .map_err(sock_err("SO_REUSEADDR", ifname))?;
                setsockopt(
                    &fd,
                    sockopt::BindToDevice,
                    &std::ffi::OsString::from(ifname),
                )
                .map_err(sock_err("SO_BINDTODEVICE", ifname))?;
                setsockopt(&fd, sockopt::ReceiveTimestampns, &true)
                    .map_err(sock_err("SO_TIMESTAMPNS", ifname))?;
                // Room for a long starvation's worth of heartbeats.
                if setsockopt(&fd, sockopt::RcvBufForce, &(4 << 20)).is_err() {
                    let _ = setsockopt(&fd, sockopt::RcvBuf, &(4 << 20));
                }
                if fam == AddressFamily::Inet {
                    setsockopt(&fd, sockopt::Ipv4PacketInfo, &true)
                        .map_err(sock_err("IP_PKTINFO", ifname))?;
                    bind(
                        fd.as_raw_fd(),
                        &SockaddrIn::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)),
                    )
                    .map_err(sock_err(format!("bind UDP port {port}"), ifname))?;
                } else {
                    setsockopt(&fd, sockopt::Ipv6V6Only, &true)
                        .map_err(sock_err("IPV6_V6ONLY", ifname))?;
                    setsockopt(&fd, sockopt::Ipv6RecvPacketInfo, &true)
                        .map_err(sock_err("IPV6_RECVPKTINFO", ifname))?;
                    bind(
                        fd.as_raw_fd(),
                        &SockaddrIn6::from(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0)),
                    )
                    .map_err(sock_err(format!("bind UDP port {port}"), ifname))?;
                }
                // SAFETY: fd is a freshly created, owned UDP socket.
                let sock =
                    unsafe { UdpSocket::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(fd)) };
                out.push((
                    RxSocket {
                        sock,
                        ifname: ifname.to_string(),
                        ifindex,
                    },
                    fam,
                ));
                out.len() - 1
            }
        };
        if let Medium::Mcast { group, .. } = &m.medium {
            let s = &out[pos].0.sock;
            match group {
                IpAddr::V4(g) => {
                    let mreq = libc::ip_mreqn {
                        imr_multiaddr: libc::in_addr {
                            s_addr: u32::from(*g).to_be(),
                        },
                        imr_address: libc::in_addr { s_addr: 0 },
                        imr_ifindex: ifindex as i32,
                    };
                    raw_setsockopt(s, libc::IPPROTO_IP, libc::IP_ADD_MEMBERSHIP, &mreq)
                        .map_err(io_err(format!("joining {g}"), ifname))?;
                }
                IpAddr::V6(g) => {
                    let mreq = libc::ipv6_mreq {
                        ipv6mr_multiaddr: libc::in6_addr {
                            s6_addr: g.octets(),
                        },
                        ipv6mr_interface: ifindex,
                    };
                    raw_setsockopt(s, libc::IPPROTO_IPV6, libc::IPV6_ADD_MEMBERSHIP, &mreq)
                        .map_err(io_err(format!("joining {g}"), ifname))?;
                }
            }
        }
    }
    Ok(out.into_iter().map(|(r, _)| r).collect())
}

/// Reads one datagram without blocking (`Ok(None)`: nothing queued).
pub fn recv(s: &RxSocket, buf: &mut [u8]) -> io::Result<Option<Datagram>> {
    let mut cmsg = nix::cmsg_space!(libc::timespec, libc::in6_pktinfo);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = match recvmsg::<SockaddrStorage>(
        s.sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_TRUNC,
    ) {
        Ok(m) => m,
        Err(nix::Error::EAGAIN) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let read_at = Mono::now();
    let mut kernel_ts = None;
    let mut dst = None;
    let mut ifindex = s.ifindex;
    for c in msg.cmsgs().into_iter().flatten() {
        match c {
            ControlMessageOwned::ScmTimestampns(ts) => {
                kernel_ts = Some(ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64)
            }
            ControlMessageOwned::Ipv4PacketInfo(pi) => {
                dst = Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(pi.ipi_addr.s_addr))));
                ifindex = pi.ipi_ifindex as u32;
            }
            ControlMessageOwned::Ipv6PacketInfo(pi) => {
                dst = Some(IpAddr::V6(Ipv6Addr::from(pi.ipi6_addr.s6_addr)));
                ifindex = pi.ipi6_ifindex;
            }
            _ => {}
        }
    }
    let len = msg.bytes;
    let src = msg
        .address
        .and_then(|a| {
            a.as_sockaddr_in()
                .map(|v| SocketAddr::from((v.ip(), v.port())))
                .or_else(|| {
                    a.as_sockaddr_in6()
                        .map(|v| SocketAddr::from((v.ip(), v.port())))
                })
        })
        .unwrap_or_else(|| SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
    // MSG_TRUNC returns the real length: an oversized datagram is cut.
    let data = buf[..len.min(buf.len())].to_vec();
    Ok(Some(Datagram {
        data,
        src,
        dst,
        ifindex,
        kernel_ts,
        read_at,
    }))
}

/// Finds the medium a datagram arrived on. Built once at startup (each
/// broadcast medium's address is resolved then), so the receive path makes
/// no system calls to classify a datagram.
pub struct MediaIndex {
    entries: Vec<(usize, String, AddressFamily, Match)>,
}

enum Match {
    Bcast(Option<Ipv4Addr>),
    Mcast(IpAddr),
    Ucast(IpAddr),
}

impl MediaIndex {
    pub fn new(media: &[MediumDef]) -> MediaIndex {
        let entries = media
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                let (ifname, fam) = (m.medium.ifname()?, family_of(&m.medium)?);
                let how = match &m.medium {
                    Medium::Bcast { .. } => Match::Bcast(netif::broadcast_v4(ifname)),
                    Medium::Mcast { group, .. } => Match::Mcast(*group),
                    Medium::Ucast { peer, .. } => Match::Ucast(*peer),
                    Medium::Serial { .. } => return None,
                };
                Some((i, ifname.to_string(), fam, how))
            })
            .collect();
        MediaIndex { entries }
    }

    /// Which medium (index into the media list) `d` arrived on: the one
    /// on its interface whose address it matches, else the first medium of
    /// that interface and address family.
    pub fn medium_of(&self, ifname: &str, d: &Datagram) -> Option<usize> {
        let fam = fam_of_addr(d.src.ip());
        let mut first = None;
        for (i, name, f, how) in &self.entries {
            if name != ifname || *f != fam {
                continue;
            }
            first.get_or_insert(*i);
            let hit = match how {
                Match::Mcast(group) => d.dst == Some(*group),
                Match::Ucast(peer) => d.src.ip() == *peer,
                Match::Bcast(brd) => {
                    matches!(d.dst, Some(IpAddr::V4(a)) if a.is_broadcast() || Some(a) == *brd)
                }
            };
            if hit {
                return Some(*i);
            }
        }
        first
    }
}

fn fam_of_addr(a: IpAddr) -> AddressFamily {
    if a.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    }
}

/// A sending target (one medium).
pub struct TxTarget {
    pub link: usize,
    pub sock: UdpSocket,
    pub dest: SocketAddr,
    pub describe: String,
}

fn tx_socket(fam: AddressFamily, ifname: &str) -> Result<OwnedFd, MediaError> {
    let fd = socket::socket(fam, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)
        .map_err(sock_err("socket", ifname))?;
    setsockopt(
        &fd,
        sockopt::BindToDevice,
        &std::ffi::OsString::from(ifname),
    )
    .map_err(sock_err("SO_BINDTODEVICE", ifname))?;
    let _ = setsockopt(&fd, sockopt::Priority, &6); // TC_PRIO_INTERACTIVE
    if fam == AddressFamily::Inet {
        let _ = setsockopt(&fd, sockopt::Ipv4Tos, &0x10); // IPTOS_LOWDELAY
    }
    Ok(fd)
}

/// Opens a sending socket per UDP medium (skipping ucast to ourselves).
pub fn open_senders(media: &[MediumDef]) -> Result<Vec<TxTarget>, MediaError> {
    let mut out = Vec::new();
    for (link, m) in media.iter().enumerate() {
        let (Some(ifname), Some(fam)) = (m.medium.ifname(), family_of(&m.medium)) else {
            continue;
        };
        let ifindex = check_if(m, ifname)?;
        let fd = tx_socket(fam, ifname)?;
        let dest = match &m.medium {
            Medium::Bcast { port, .. } => {
                setsockopt(&fd, sockopt::Broadcast, &true)
                    .map_err(sock_err("SO_BROADCAST", ifname))?;
                let b = netif::broadcast_v4(ifname).ok_or_else(|| MediaError::NoBroadcast {
                    line: m.line,
                    medium: m.medium.describe(),
                    ifname: ifname.to_string(),
                })?;
                SocketAddr::from((b, *port))
            }
            Medium::Mcast {
                group: IpAddr::V4(g),
                port,
                ttl,
                loopback,
                ..
            } => {
                let mreq = libc::ip_mreqn {
                    imr_multiaddr: libc::in_addr {
                        s_addr: u32::from(*g).to_be(),
                    },
                    imr_address: libc::in_addr { s_addr: 0 },
                    imr_ifindex: ifindex as i32,
                };
                raw_setsockopt(&fd, libc::IPPROTO_IP, libc::IP_MULTICAST_IF, &mreq)
                    .map_err(io_err("IP_MULTICAST_IF", ifname))?;
                setsockopt(&fd, sockopt::IpMulticastTtl, ttl)
                    .map_err(sock_err("IP_MULTICAST_TTL", ifname))?;
                setsockopt(&fd, sockopt::IpMulticastLoop, loopback)
                    .map_err(sock_err("IP_MULTICAST_LOOP", ifname))?;
                SocketAddr::from((*g, *port))
            }
            Medium::Mcast {
                group: IpAddr::V6(g),
                port,
                ttl,
                loopback,
                ..
            } => {
                let idx = ifindex as libc::c_int;
                raw_setsockopt(&fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_IF, &idx)
                    .map_err(io_err("IPV6_MULTICAST_IF", ifname))?;
                let hops = *ttl as libc::c_int;
                raw_setsockopt(&fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_HOPS, &hops)
                    .map_err(io_err("IPV6_MULTICAST_HOPS", ifname))?;
                let lp = *loopback as libc::c_int;
                raw_setsockopt(&fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_LOOP, &lp)
                    .map_err(io_err("IPV6_MULTICAST_LOOP", ifname))?;
                SocketAddr::V6(SocketAddrV6::new(*g, *port, 0, ifindex))
            }
            Medium::Ucast { peer, port, .. } => {
                if netif::is_local(*peer) {
                    log::info!(
                        "ha.cf line {}: `{}` is one of our own addresses: skipped on this node",
                        m.line,
                        m.medium.describe()
                    );
                    continue;
                }
                match peer {
                    IpAddr::V6(p) if p.is_unicast_link_local() => {
                        SocketAddr::V6(SocketAddrV6::new(*p, *port, 0, ifindex))
                    }
                    _ => SocketAddr::from((*peer, *port)),
                }
            }
            Medium::Serial { .. } => continue,
        };
        // SAFETY: fd is a freshly created, owned UDP socket.
        let sock = unsafe { UdpSocket::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(fd)) };
        out.push(TxTarget {
            link,
            sock,
            dest,
            describe: m.medium.describe(),
        });
    }
    Ok(out)
}

/// Sends `packet` to one target.
pub fn send(t: &TxTarget, packet: &[u8]) -> io::Result<()> {
    t.sock.send_to(packet, t.dest).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(medium: Medium) -> MediumDef {
        MediumDef { medium, line: 1 }
    }

    fn dgram(src: &str, dst: &str) -> Datagram {
        Datagram {
            data: Vec::new(),
            src: SocketAddr::new(src.parse().unwrap(), 40000),
            dst: Some(dst.parse().unwrap()),
            ifindex: 0,
            kernel_ts: None,
            read_at: Mono::ZERO,
        }
    }

    #[test]
    fn datagrams_map_to_their_medium() {
        // Interfaces that do not exist here: the broadcast address is then
        // unknown, and only 255.255.255.255 counts as broadcast.
        let media = vec![
            def(Medium::Bcast {
                ifname: "hbx0".into(),
                port: 694,
            }),
            def(Medium::Mcast {
                ifname: "hbx0".into(),
                group: "239.192.0.1".parse().unwrap(),
                port: 694,
                ttl: 1,
                loopback: false,
            }),
            def(Medium::Ucast {
                ifname: "hbx0".into(),
                peer: "10.0.0.2".parse().unwrap(),
                port: 694,
            }),
            def(Medium::Ucast {
                ifname: "hbx1".into(),
                peer: "fd00::2".parse().unwrap(),
                port: 694,
            }),
            def(Medium::Serial {
                device: "/dev/ttyS0".into(),
                baud: 19200,
            }),
        ];
        let idx = MediaIndex::new(&media);
        let cases = [
            ("hbx0", "10.0.0.9", "239.192.0.1", Some(1)),
            ("hbx0", "10.0.0.2", "10.0.0.1", Some(2)),
            ("hbx0", "10.0.0.9", "255.255.255.255", Some(0)),
            ("hbx0", "10.0.0.9", "10.0.0.1", Some(0)),
            ("hbx1", "fd00::2", "fd00::1", Some(3)),
            ("hbx1", "10.0.0.2", "10.0.0.1", None),
            ("eth9", "10.0.0.2", "10.0.0.1", None),
        ];
        for (ifname, src, dst, want) in cases {
            assert_eq!(
                idx.medium_of(ifname, &dgram(src, dst)),
                want,
                "{ifname} {src} -> {dst}"
            );
        }
    }
}
