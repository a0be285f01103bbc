//! The built-in `IPaddr`/`IPaddr2`/`IPv6addr` resource: service addresses
//! added and removed with rtnetlink messages, never by running `ip` or
//! `ifconfig`.
//!
//! - Addresses are added as secondaries with their label (`eth0:1`), and
//!   `promote_secondaries` is switched on for the interface first, so
//!   removing one address never takes the others down (Heartbeat FAQ q5).
//! - Many addresses go to the kernel as one batch: all RTM_NEWADDR /
//!   RTM_DELADDR messages in one `sendmsg`, acknowledged individually
//!   (FAQ q6). Adding an address that exists, or deleting one that does not,
//!   counts as success (start/stop are idempotent).
//! - IPv6 addresses are added with IFA_F_NODAD so they are usable at once;
//!   the unsolicited neighbour advertisement announces them instead.

use std::{
    io,
    net::{IpAddr, Ipv4Addr},
};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::{
    address::{AddressAttribute, AddressFlags, AddressMessage},
    AddressFamily, RouteNetlinkMessage,
};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::{config::IpSpec, netif};

/// A fully resolved service address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Addr {
    pub ifname: String,
    pub ifindex: u32,
    pub addr: IpAddr,
    pub prefix: u8,
    pub label: Option<String>,
    pub broadcast: Option<Ipv4Addr>,
}

#[derive(Debug, thiserror::Error)]
pub enum IpError {
    #[error(
        "no interface has a subnet containing {0}; name it explicitly, e.g. IPaddr::{0}/24/eth0"
    )]
    NoInterface(IpAddr),
    #[error("interface `{0}` does not exist")]
    UnknownInterface(String),
    #[error(
        "cannot tell the prefix length of {addr} on {ifname}: write it as {addr}/<bits>/{ifname}"
    )]
    NoPrefix { addr: IpAddr, ifname: String },
    #[error("netlink: {0}")]
    Io(#[from] io::Error),
    #[error("the kernel refused {op} {addr} on {ifname}: {err}")]
    Refused {
        op: &'static str,
        addr: IpAddr,
        ifname: String,
        err: io::Error,
    },
}

fn contains(net: IpAddr, prefix: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let m = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix.min(32))
            };
            u32::from(n) & m == u32::from(i) & m
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let m = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - prefix.min(128))
            };
            u128::from(n) & m == u128::from(i) & m
        }
        _ => false,
    }
}

/// Resolves interface and prefix like Heartbeat's findif: from the spec, or
/// from the interface address whose subnet contains the service address
/// (longest prefix wins).
pub fn resolve(spec: &IpSpec) -> Result<Addr, IpError> {
    resolve_in(spec, &netif::addresses())
}

/// [`resolve`] against a snapshot of the interface addresses, so a batch of
/// many addresses reads them once, not once per address.
pub fn resolve_in(spec: &IpSpec, addrs: &[netif::IfAddr]) -> Result<Addr, IpError> {
    let covering = addrs
        .iter()
        .filter(|a| a.addr != spec.addr && contains(a.addr, a.prefix_len, spec.addr))
        .filter(|a| spec.ifname.as_ref().is_none_or(|i| *i == a.ifname))
        .max_by_key(|a| a.prefix_len);
    let ifname = match (&spec.ifname, covering) {
        (Some(i), _) => i.clone(),
        (None, Some(c)) => c.ifname.clone(),
        (None, None) => return Err(IpError::NoInterface(spec.addr)),
    };
    let ifindex =
        netif::ifindex(&ifname).ok_or_else(|| IpError::UnknownInterface(ifname.clone()))?;
    let prefix = match (spec.prefix, covering) {
        (Some(p), _) => p,
        (None, Some(c)) => c.prefix_len,
        (None, None) => {
            return Err(IpError::NoPrefix {
                addr: spec.addr,
                ifname,
            });
        }
    };
    let label = spec.label.clone();
    Ok(Addr {
        ifname,
        ifindex,
        addr: spec.addr,
        prefix,
        label,
        broadcast: spec.broadcast,
    })
}

/// Sets `net.ipv4.conf.<if>.promote_secondaries = 1` (FAQ q5).
pub fn promote_secondaries(ifname: &str) -> io::Result<()> {
    let p = format!("/proc/sys/net/ipv4/conf/{ifname}/promote_secondaries");
    match std::fs::read_to_string(&p) {
        Ok(v) if v.trim() == "1" => Ok(()),
        _ => std::fs::write(&p, "1"),
    }
}

fn message(a: &Addr) -> AddressMessage {
    let mut m = AddressMessage::default();
    m.header.family = if a.addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    m.header.prefix_len = a.prefix;
    m.header.index = a.ifindex;
    m.attributes.push(AddressAttribute::Local(a.addr));
    m.attributes.push(AddressAttribute::Address(a.addr));
    if let IpAddr::V4(v4) = a.addr {
        let brd = a
            .broadcast
            .or_else(|| (a.prefix < 31).then(|| netif::subnet_broadcast(v4, a.prefix)));
        if let Some(b) = brd {
            m.attributes.push(AddressAttribute::Broadcast(b));
        }
        if let Some(l) = &a.label {
            m.attributes.push(AddressAttribute::Label(l.clone()));
        }
    } else {
        m.attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
    m
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddrOp {
    Add,
    Del,
}

fn open() -> io::Result<Socket> {
    let mut s = Socket::new(NETLINK_ROUTE)?;
    s.bind_auto()?;
    s.connect(&SocketAddr::new(0, 0))?;
    let _ = s.set_rx_buf_sz(4 << 20);
    Ok(s)
}

/// Sends every request in as few `sendmsg` calls as fit in 64 KiB (one for
/// up to ~600 addresses) and returns each one's result in order.
pub fn apply(op: AddrOp, addrs: &[Addr]) -> Result<Vec<Result<(), IpError>>, IpError> {
    if addrs.is_empty() {
        return Ok(Vec::new());
    }
    let sock = open()?;
    let mut results: Vec<Option<Result<(), IpError>>> = (0..addrs.len()).map(|_| None).collect();
    let base_seq: u32 = 1;
    let mut i = 0;
    while i < addrs.len() {
        let mut buf = Vec::with_capacity(64 * 1024);
        let start = i;
        while i < addrs.len() && buf.len() < 60 * 1024 {
            let inner = match op {
                AddrOp::Add => RouteNetlinkMessage::NewAddress(message(&addrs[i])),
                AddrOp::Del => RouteNetlinkMessage::DelAddress(message(&addrs[i])),
            };
            let mut hdr = NetlinkHeader::default();
            hdr.flags = NLM_F_REQUEST
                | NLM_F_ACK
                | if op == AddrOp::Add {
                    NLM_F_CREATE | NLM_F_EXCL
                } else {
                    0
                };
            hdr.sequence_number = base_seq + i as u32;
            let mut msg = NetlinkMessage::new(hdr, NetlinkPayload::InnerMessage(inner));
            msg.finalize();
            let off = buf.len();
            buf.resize(off + msg.buffer_len(), 0);
            msg.serialize(&mut buf[off..]);
            i += 1;
        }
        sock.send(&buf, 0)?;
        let mut pending = i - start;
        let mut rbuf = vec![0u8; 256 * 1024];
        while pending > 0 {
            let n = sock.recv(&mut &mut rbuf[..], 0)?;
            for msg in messages(&rbuf[..n])? {
                let seq = msg.header.sequence_number;
                if let NetlinkPayload::Error(e) = msg.payload {
                    let idx = seq.wrapping_sub(base_seq) as usize;
                    if idx < addrs.len() && results[idx].is_none() {
                        let a = &addrs[idx];
                        let r = match e.code.map(|c| -c.get()) {
                            None => Ok(()),
                            Some(libc::EEXIST) if op == AddrOp::Add => Ok(()),
                            Some(libc::EADDRNOTAVAIL | libc::ENOENT | libc::ENODEV)
                                if op == AddrOp::Del =>
                            {
                                Ok(())
                            }
                            Some(code) => Err(IpError::Refused {
                                op: if op == AddrOp::Add {
                                    "adding"
                                } else {
                                    "removing"
                                },
                                addr: a.addr,
                                ifname: a.ifname.clone(),
                                err: io::Error::from_raw_os_error(code),
                            }),
                        };
                        results[idx] = Some(r);
                        pending -= 1;
                    }
                }
            }
        }
    }
    Ok(results
        .into_iter()
        .map(|r| r.expect("every request acknowledged"))
        .collect())
}

/// The netlink messages of one received datagram, in order.
fn messages(buf: &[u8]) -> io::Result<Vec<NetlinkMessage<RouteNetlinkMessage>>> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + 16 <= buf.len() {
        let len = u32::from_ne_bytes(buf[off..off + 4].try_into().expect("4 bytes")) as usize;
        if len < 16 || off + len > buf.len() {
            break;
        }
        let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[off..off + len])
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        out.push(msg);
        off += (len + 3) & !3;
    }
    Ok(out)
}

/// Which of `addrs` are currently configured on their interface.
pub fn present(addrs: &[Addr]) -> Result<Vec<bool>, IpError> {
    let sock = open()?;
    let mut found = vec![false; addrs.len()];
    for family in [AddressFamily::Inet, AddressFamily::Inet6] {
        if !addrs
            .iter()
            .any(|a| a.addr.is_ipv4() == (family == AddressFamily::Inet))
        {
            continue;
        }
        let mut m = AddressMessage::default();
        m.header.family = family;
        let mut hdr = NetlinkHeader::default();
        hdr.flags = NLM_F_REQUEST | NLM_F_DUMP;
        hdr.sequence_number = 1;
        let mut msg = NetlinkMessage::new(
            hdr,
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::GetAddress(m)),
        );
        msg.finalize();
        let mut buf = vec![0u8; msg.buffer_len()];
        msg.serialize(&mut buf);
        sock.send(&buf, 0)?;
        let mut rbuf = vec![0u8; 256 * 1024];
        'dump: loop {
            let n = sock.recv(&mut &mut rbuf[..], 0)?;
            for msg in messages(&rbuf[..n])? {
                match msg.payload {
                    NetlinkPayload::Done(_) => break 'dump,
                    NetlinkPayload::Error(e) if e.code.is_some() => {
                        return Err(io::Error::from_raw_os_error(-e.code.unwrap().get()).into())
                    }
                    NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(am)) => {
                        let local = am.attributes.iter().find_map(|a| match a {
                            AddressAttribute::Local(ip) => Some(*ip),
                            _ => None,
                        });
                        let address = am.attributes.iter().find_map(|a| match a {
                            AddressAttribute::Address(ip) => Some(*ip),
                            _ => None,
                        });
                        if let Some(ip) = local.or(address) {
                            for (i, a) in addrs.iter().enumerate() {
                                if a.addr == ip && a.ifindex == am.header.index {
                                    found[i] = true;
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnet_matching() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(contains(ip("10.1.2.3"), 24, ip("10.1.2.200")));
        assert!(!contains(ip("10.1.2.3"), 24, ip("10.1.3.1")));
        assert!(contains(ip("10.1.2.3"), 0, ip("192.168.0.1")));
        assert!(contains(ip("fd00::1"), 64, ip("fd00::ffff")));
        assert!(!contains(ip("fd00::1"), 64, ip("fd01::1")));
        assert!(!contains(ip("10.0.0.1"), 8, ip("fd00::1")));
    }

    #[test]
    fn message_has_label_broadcast_and_nodad() {
        let a = Addr {
            ifname: "eth0".into(),
            ifindex: 2,
            addr: "10.0.0.10".parse().unwrap(),
            prefix: 24,
            label: Some("eth0:1".into()),
            broadcast: None,
        };
        let m = message(&a);
        assert!(m
            .attributes
            .contains(&AddressAttribute::Broadcast("10.0.0.255".parse().unwrap())));
        assert!(m
            .attributes
            .contains(&AddressAttribute::Label("eth0:1".into())));
        let v6 = Addr {
            addr: "fd00::10".parse().unwrap(),
            prefix: 64,
            label: None,
            ..a
        };
        assert!(message(&v6)
            .attributes
            .contains(&AddressAttribute::Flags(AddressFlags::Nodad)));
    }
}
