//! Ping targets (`ping`, `ping6`, `ping_group`): ICMP echo (on ping sockets
//! when `net.ipv4.ping_group_range` allows, else raw ICMP sockets with our
//! own identifier), and a pure tracker that turns replies into "how many
//! targets are reachable" (a group counts once, if any member answers),
//! the number every node announces for the ipfail-style tie break.

use std::{
    io,
    net::{IpAddr, SocketAddr},
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    time::Duration,
};

use tokio::io::unix::AsyncFd;

use crate::{config::PingTarget, time::Mono};

/// Reachability of ping targets from reply times.
pub struct PingTracker {
    deadping: Duration,
    started: Mono,
    last: Vec<Option<Mono>>,
}

impl PingTracker {
    pub fn new(targets: usize, deadping: Duration, now: Mono) -> Self {
        PingTracker {
            deadping,
            started: now,
            last: vec![None; targets],
        }
    }

    pub fn reply(&mut self, target: usize, at: Mono) {
        if let Some(l) = self.last.get_mut(target) {
            *l = Some(l.map_or(at, |x| x.max(at)));
        }
    }

    /// Targets that answered within deadping. Until deadping has passed
    /// since start, every target counts (no reply yet is not a loss yet).
    pub fn reachable(&self, now: Mono) -> u16 {
        let grace = now.since(self.started) < self.deadping;
        self.last
            .iter()
            .filter(|l| match l {
                Some(t) => now.since(*t) <= self.deadping,
                None => grace,
            })
            .count() as u16
    }
}

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// An ICMP socket: a ping socket (kernel handles identifier and checksum)
/// or a raw one (we do, and replies of other pingers must be filtered).
struct IcmpSocket {
    fd: AsyncFd<OwnedFd>,
    v6: bool,
    raw: bool,
    ident: u16,
}

fn icmp_socket(v6: bool) -> io::Result<IcmpSocket> {
    let (dom, proto) = if v6 {
        (libc::AF_INET6, libc::IPPROTO_ICMPV6)
    } else {
        (libc::AF_INET, libc::IPPROTO_ICMP)
    };
    let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: plain socket(2) calls; the fd is owned right away.
    let (fd, raw) = match check(unsafe { libc::socket(dom, libc::SOCK_DGRAM | flags, proto) }) {
        Ok(fd) => (fd, false),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM)) => (
            check(unsafe { libc::socket(dom, libc::SOCK_RAW | flags, proto) })?,
            true,
        ),
        Err(e) => return Err(e),
    };
    let fd = crate::util::async_fd(unsafe { OwnedFd::from_raw_fd(fd) })?;
    Ok(IcmpSocket {
        fd,
        v6,
        raw,
        ident: (std::process::id() & 0xffff) as u16,
    })
}

/// Internet checksum (RFC 1071).
pub fn checksum(b: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in b.chunks(2) {
        sum += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An echo request: type, code, checksum, identifier, sequence, payload.
/// Ping sockets overwrite identifier and checksum; raw IPv4 sockets need
/// both; raw ICMPv6 sockets get the checksum from the kernel.
pub fn echo_request(v6: bool, ident: u16, seq: u16) -> [u8; 16] {
    let mut m = [0u8; 16];
    m[0] = if v6 { 128 } else { 8 };
    m[4..6].copy_from_slice(&ident.to_be_bytes());
    m[6..8].copy_from_slice(&seq.to_be_bytes());
    m[8..16].copy_from_slice(b"hb-ping!");
    if !v6 {
        let c = checksum(&m);
        m[2..4].copy_from_slice(&c.to_be_bytes());
    }
    m
}

/// The sequence number of an echo reply, if `m` is one (with `ident`
/// checked when given: raw sockets see every host's replies).
pub fn echo_reply_seq(v6: bool, m: &[u8], ident: Option<u16>) -> Option<u16> {
    let want = if v6 { 129 } else { 0 };
    let ok =
        m.len() >= 8 && m[0] == want && ident.is_none_or(|i| u16::from_be_bytes([m[4], m[5]]) == i);
    ok.then(|| u16::from_be_bytes([m[6], m[7]]))
}

/// The sequence number of an echo reply as read from an ICMP socket: raw
/// IPv4 sockets deliver the IP header first, raw sockets see every host's
/// replies (so `ident` must match), ping sockets only ours.
pub fn parse_reply(v6: bool, raw: bool, ident: u16, pkt: &[u8]) -> Option<u16> {
    let icmp: &[u8] = if raw && !v6 {
        let ihl = ((*pkt.first()? & 0x0f) as usize) * 4;
        pkt.get(ihl..)?
    } else {
        pkt
    };
    echo_reply_seq(v6, icmp, raw.then_some(ident))
}

impl IcmpSocket {
    fn parse(&self, pkt: &[u8]) -> Option<u16> {
        parse_reply(self.v6, self.raw, self.ident, pkt)
    }
}

fn sendto(fd: &OwnedFd, buf: &[u8], to: IpAddr) -> io::Result<()> {
    let sa = socket2_addr(SocketAddr::new(to, 0));
    // SAFETY: buffer and address valid for their lengths.
    check(unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            buf.as_ptr() as *const _,
            buf.len(),
            0,
            &sa.0 as *const _ as *const libc::sockaddr,
            sa.1,
        ) as i32
    })?;
    Ok(())
}

fn socket2_addr(a: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: zeroed sockaddr_storage is valid; we fill the right variant.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match a {
        SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as u16,
                sin_port: 0,
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*v4.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in fits in sockaddr_storage.
            unsafe { std::ptr::write(&mut ss as *mut _ as *mut libc::sockaddr_in, sin) };
            (ss, std::mem::size_of::<libc::sockaddr_in>() as u32)
        }
        SocketAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as u16,
                sin6_port: 0,
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: v6.scope_id(),
            };
            // SAFETY: sockaddr_in6 fits in sockaddr_storage.
            unsafe { std::ptr::write(&mut ss as *mut _ as *mut libc::sockaddr_in6, sin6) };
            (ss, std::mem::size_of::<libc::sockaddr_in6>() as u32)
        }
    }
}

/// Pings every address of every target each `interval`, reporting
/// `(target index, reply time)` on `tx`. Runs until `tx` closes.
pub async fn run(
    targets: Vec<PingTarget>,
    interval: Duration,
    tx: tokio::sync::mpsc::Sender<(usize, Mono)>,
) -> io::Result<()> {
    let need6 = targets.iter().flat_map(|t| &t.addrs).any(|a| a.is_ipv6());
    let need4 = targets.iter().flat_map(|t| &t.addrs).any(|a| a.is_ipv4());
    let s4 = if need4 {
        Some(icmp_socket(false)?)
    } else {
        None
    };
    let s6 = if need6 {
        Some(icmp_socket(true)?)
    } else {
        None
    };
    // seq -> target index, for the last few rounds.
    let mut owner: Vec<(u16, usize)> = Vec::new();
    let mut seq: u16 = 0;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut buf = [0u8; 512];
    loop {
        tokio::select! {
            _ = tick.tick() => {
                for (ti, t) in targets.iter().enumerate() {
                    for a in &t.addrs {
                        seq = seq.wrapping_add(1);
                        owner.push((seq, ti));
                        let s = if a.is_ipv6() { s6.as_ref() } else { s4.as_ref() };
                        if let Some(s) = s {
                            if let Err(e) = sendto(s.fd.get_ref(), &echo_request(a.is_ipv6(), s.ident, seq), *a) {
                                log::debug!("ping {a}: {e}");
                            }
                        }
                    }
                }
                let keep = targets.iter().map(|t| t.addrs.len()).sum::<usize>() * 8;
                if owner.len() > keep {
                    owner.drain(..owner.len() - keep);
                }
            }
            r = readable(s4.as_ref()), if s4.is_some() => {
                let seqs = read_replies(s4.as_ref().expect("guarded"), r?, &mut buf)?;
                if !report(&owner, &seqs, &tx).await {
                    return Ok(());
                }
            }
            r = readable(s6.as_ref()), if s6.is_some() => {
                let seqs = read_replies(s6.as_ref().expect("guarded"), r?, &mut buf)?;
                if !report(&owner, &seqs, &tx).await {
                    return Ok(());
                }
            }
        }
    }
}

/// Sequence numbers of every echo reply queued on `sock`.
fn read_replies(
    sock: &IcmpSocket,
    mut g: tokio::io::unix::AsyncFdReadyGuard<'_, OwnedFd>,
    buf: &mut [u8],
) -> io::Result<Vec<u16>> {
    let mut seqs = Vec::new();
    while let Ok(n) = g.try_io(|fd| recv(fd.get_ref(), buf)) {
        if let Some(sq) = sock.parse(&buf[..n?]) {
            seqs.push(sq);
        }
    }
    Ok(seqs)
}

/// Reports the targets that answered; false when the receiver is gone.
async fn report(
    owner: &[(u16, usize)],
    seqs: &[u16],
    tx: &tokio::sync::mpsc::Sender<(usize, Mono)>,
) -> bool {
    for sq in seqs {
        if let Some((_, ti)) = owner.iter().find(|(s, _)| s == sq) {
            if tx.send((*ti, Mono::now())).await.is_err() {
                return false;
            }
        }
    }
    true
}

async fn readable(
    s: Option<&IcmpSocket>,
) -> io::Result<tokio::io::unix::AsyncFdReadyGuard<'_, OwnedFd>> {
    match s {
        Some(s) => s.fd.readable().await,
        None => std::future::pending().await,
    }
}

fn recv(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: buf is valid for writes of its length.
    let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr() as *mut _, buf.len(), 0) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracker_counts_with_grace() {
        let ms = Duration::from_millis(1);
        let t0 = Mono::from_nanos(1_000_000_000);
        let mut p = PingTracker::new(2, 100 * ms, t0);
        assert_eq!(
            p.reachable(t0 + 50 * ms),
            2,
            "grace before the first deadping"
        );
        p.reply(0, t0 + 60 * ms);
        assert_eq!(p.reachable(t0 + 150 * ms), 1);
        assert_eq!(p.reachable(t0 + 161 * ms), 0);
        p.reply(1, t0 + 170 * ms);
        assert_eq!(p.reachable(t0 + 171 * ms), 1);
    }

    #[test]
    fn echo_codec() {
        let m = echo_request(false, 0xabcd, 0x1234);
        assert_eq!(m[0], 8);
        assert_eq!(checksum(&m), 0, "a valid checksum sums to zero");
        let mut reply = m;
        reply[0] = 0;
        assert_eq!(echo_reply_seq(false, &reply, None), Some(0x1234));
        assert_eq!(echo_reply_seq(false, &reply, Some(0xabcd)), Some(0x1234));
        assert_eq!(
            echo_reply_seq(false, &reply, Some(0x1111)),
            None,
            "another pinger's reply"
        );
        assert_eq!(
            echo_reply_seq(false, &m, None),
            None,
            "a request is not a reply"
        );
        assert_eq!(
            echo_reply_seq(true, &[129, 0, 0, 0, 0, 0, 0, 7], None),
            Some(7)
        );
        assert_eq!(echo_reply_seq(true, &[129, 0], None), None);
        // A raw IPv4 socket's view: 20-byte IP header, then the reply.
        let mut raw = vec![0x45u8];
        raw.extend_from_slice(&[0; 19]);
        raw.extend_from_slice(&reply);
        assert_eq!(parse_reply(false, true, 0xabcd, &raw), Some(0x1234));
        assert_eq!(parse_reply(false, true, 0x1111, &raw), None);
        assert_eq!(
            parse_reply(false, true, 0xabcd, &[0x4f]),
            None,
            "header longer than the packet"
        );
        // RFC 1071 example bytes.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            !0xddf2
        );
    }

    #[tokio::test]
    async fn pings_loopback() {
        let (tx, mut rx) = tokio::sync::mpsc::channel(8);
        let t = vec![PingTarget {
            name: "lo".into(),
            addrs: vec!["127.0.0.1".parse().unwrap()],
            line: 1,
        }];
        let task = tokio::spawn(run(t, Duration::from_millis(20), tx));
        let (target, _) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(target, 0);
        task.abort();
    }
}
