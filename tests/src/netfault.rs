//! Network impairment for heartbeats, without `sch_netem` (this kernel is
//! built without it): on a node's *egress*, before the peer's XDP sees
//! anything, like a real lossy link.
//!
//! - loss: `iptables -m statistic --mode random --probability P -j DROP`;
//! - delay with jitter: `-j NFQUEUE`, and a minimal nfnetlink_queue client
//!   that holds each packet for `delay ± jitter` (uniform) before accepting
//!   it (packets may overtake each other, as with netem jitter).

use std::{
    cmp::Reverse,
    collections::BinaryHeap,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use crate::netns::Netns;

const NETLINK_NETFILTER: i32 = 12;
const NFNL_SUBSYS_QUEUE: u16 = 3;
const NFQNL_MSG_PACKET: u16 = 0;
const NFQNL_MSG_VERDICT: u16 = 1;
const NFQNL_MSG_CONFIG: u16 = 2;
const NFQA_PACKET_HDR: u16 = 1;
const NFQA_VERDICT_HDR: u16 = 2;
const NFQA_CFG_CMD: u16 = 1;
const NFQA_CFG_PARAMS: u16 = 2;
const NFQNL_CFG_CMD_BIND: u8 = 1;
const NFQNL_COPY_META: u8 = 1;
const NF_ACCEPT: u32 = 1;

fn nlmsg(msg_type: u16, flags: u16, seq: u32, queue: u16, attrs: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut b = vec![0u8; 16];
    b.extend_from_slice(&[libc::AF_INET as u8, 0]); // nfgenmsg: family, version
    b.extend_from_slice(&queue.to_be_bytes()); // res_id
    for (t, v) in attrs {
        let len = 4 + v.len();
        b.extend_from_slice(&(len as u16).to_ne_bytes());
        b.extend_from_slice(&t.to_ne_bytes());
        b.extend_from_slice(v);
        while !b.len().is_multiple_of(4) {
            b.push(0);
        }
    }
    let total = b.len() as u32;
    b[0..4].copy_from_slice(&total.to_ne_bytes());
    b[4..6].copy_from_slice(&((NFNL_SUBSYS_QUEUE << 8) | msg_type).to_ne_bytes());
    b[6..8].copy_from_slice(&flags.to_ne_bytes());
    b[8..12].copy_from_slice(&seq.to_ne_bytes());
    b
}

fn send(fd: &OwnedFd, b: &[u8]) {
    // SAFETY: b is valid for its length; kernel address is zeroed nl.
    let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    sa.nl_family = libc::AF_NETLINK as u16;
    unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            b.as_ptr() as *const _,
            b.len(),
            0,
            &sa as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_nl>() as u32,
        );
    }
}

/// Lets queued packet `id` go on (NF_ACCEPT).
fn accept(fd: &OwnedFd, queue: u16, seq: u32, id: u32) {
    let mut v = NF_ACCEPT.to_be_bytes().to_vec();
    v.extend_from_slice(&id.to_be_bytes());
    send(
        fd,
        &nlmsg(
            NFQNL_MSG_VERDICT,
            libc::NLM_F_REQUEST as u16,
            seq,
            queue,
            &[(NFQA_VERDICT_HDR, v)],
        ),
    );
}

/// Packet ids of every NFQNL_MSG_PACKET in a netlink datagram.
fn packet_ids(buf: &[u8]) -> Vec<u32> {
    let mut ids = Vec::new();
    let mut off = 0;
    while off + 20 <= buf.len() {
        let len = u32::from_ne_bytes(buf[off..off + 4].try_into().unwrap()) as usize;
        let ty = u16::from_ne_bytes(buf[off + 4..off + 6].try_into().unwrap());
        if len < 20 || off + len > buf.len() {
            break;
        }
        if ty == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET {
            let mut a = off + 20;
            while a + 4 <= off + len {
                let alen = u16::from_ne_bytes(buf[a..a + 2].try_into().unwrap()) as usize;
                let aty = u16::from_ne_bytes(buf[a + 2..a + 4].try_into().unwrap()) & 0x7fff;
                if alen < 4 {
                    break;
                }
                if aty == NFQA_PACKET_HDR && alen >= 8 {
                    ids.push(u32::from_be_bytes(buf[a + 4..a + 8].try_into().unwrap()));
                }
                a += (alen + 3) & !3;
            }
        }
        off += (len + 3) & !3;
    }
    ids
}

/// Loss and delay on the egress of heartbeats of one namespace; removed on
/// drop (the queue client stops; the rules go away with the namespace).
pub struct Impairment {
    stop: Arc<AtomicBool>,
    pub delayed: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
    ns: String,
    rules: Vec<Vec<String>>,
}

impl Impairment {
    pub fn new(
        ns: &Netns,
        port: u16,
        loss: f64,
        delay: Duration,
        jitter: Duration,
        queue: u16,
    ) -> Impairment {
        let fd = ns.run(|| {
            // SAFETY: plain socket(2); owned right away.
            let fd = unsafe {
                libc::socket(
                    libc::AF_NETLINK,
                    libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                    NETLINK_NETFILTER,
                )
            };
            assert!(
                fd >= 0,
                "netlink netfilter socket: {}",
                std::io::Error::last_os_error()
            );
            unsafe { OwnedFd::from_raw_fd(fd) }
        });
        let cfg = libc::NLM_F_REQUEST as u16 | libc::NLM_F_ACK as u16;
        send(
            &fd,
            &nlmsg(
                NFQNL_MSG_CONFIG,
                cfg,
                1,
                queue,
                &[(
                    NFQA_CFG_CMD,
                    vec![NFQNL_CFG_CMD_BIND, 0, 0, libc::AF_INET as u8],
                )],
            ),
        );
        let mut params = 0xffffu32.to_be_bytes().to_vec();
        params.push(NFQNL_COPY_META);
        send(
            &fd,
            &nlmsg(
                NFQNL_MSG_CONFIG,
                cfg,
                2,
                queue,
                &[(NFQA_CFG_PARAMS, params)],
            ),
        );
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 500,
        };
        // SAFETY: valid option pointer and length.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const _ as *const _,
                std::mem::size_of::<libc::timeval>() as u32,
            );
        }
        let rules = vec![
            vec![
                "-A".into(),
                "OUTPUT".into(),
                "-p".into(),
                "udp".into(),
                "--dport".into(),
                port.to_string(),
                "-m".into(),
                "statistic".into(),
                "--mode".into(),
                "random".into(),
                "--probability".into(),
                format!("{loss}"),
                "-j".into(),
                "DROP".into(),
            ],
            vec![
                "-A".into(),
                "OUTPUT".into(),
                "-p".into(),
                "udp".into(),
                "--dport".into(),
                port.to_string(),
                "-j".into(),
                "NFQUEUE".into(),
                "--queue-num".into(),
                queue.to_string(),
                "--queue-bypass".into(),
            ],
        ];
        for r in &rules {
            let mut args = vec!["iptables-legacy"];
            args.extend(r.iter().map(String::as_str));
            ns.exec(&args);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let delayed = Arc::new(AtomicU64::new(0));
        let (st, dl) = (stop.clone(), delayed.clone());
        let thread = std::thread::spawn(move || {
            let mut heap: BinaryHeap<Reverse<(Instant, u32)>> = BinaryHeap::new();
            let mut rng = (std::process::id() as u64) << 32 | 0x9e37_79b9;
            let mut buf = vec![0u8; 65536];
            let mut seq = 10u32;
            while !st.load(Ordering::Relaxed) {
                // SAFETY: buf valid for writes of its length.
                let n =
                    unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr() as *mut _, buf.len(), 0) };
                let now = Instant::now();
                if n > 0 {
                    for id in packet_ids(&buf[..n as usize]) {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        let span = jitter.as_nanos() as u64 * 2 + 1;
                        let d = delay.saturating_sub(jitter) + Duration::from_nanos(rng % span);
                        heap.push(Reverse((now + d, id)));
                        dl.fetch_add(1, Ordering::Relaxed);
                    }
                }
                while heap
                    .peek()
                    .is_some_and(|Reverse((t, _))| *t <= Instant::now())
                {
                    let Reverse((_, id)) = heap.pop().unwrap();
                    seq += 1;
                    accept(&fd, queue, seq, id);
                }
            }
            // Release whatever is still held.
            for Reverse((_, id)) in heap {
                accept(&fd, queue, 0, id);
            }
        });
        Impairment {
            stop,
            delayed,
            thread: Some(thread),
            ns: ns.name.clone(),
            rules,
        }
    }
}

impl Drop for Impairment {
    fn drop(&mut self) {
        for r in &self.rules {
            let mut args: Vec<String> = vec![
                "netns".into(),
                "exec".into(),
                self.ns.clone(),
                "iptables-legacy".into(),
                "-D".into(),
            ];
            args.extend(r[1..].iter().cloned());
            let _ = std::process::Command::new("ip").args(&args).status();
        }
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_layout() {
        let m = nlmsg(
            NFQNL_MSG_VERDICT,
            1,
            7,
            3,
            &[(NFQA_VERDICT_HDR, vec![0, 0, 0, 1, 0, 0, 0, 42])],
        );
        assert_eq!(m.len(), 16 + 4 + 12);
        assert_eq!(u16::from_ne_bytes([m[4], m[5]]), (3 << 8) | 1);
        assert_eq!(&m[18..20], &[0, 3], "queue number, big endian");
        // A packet message carrying packet id 42 parses back.
        let mut pkt = nlmsg(
            NFQNL_MSG_PACKET,
            0,
            0,
            3,
            &[(NFQA_PACKET_HDR, vec![0, 0, 0, 42, 8, 0, 3])],
        );
        pkt[4..6].copy_from_slice(&((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET).to_ne_bytes());
        assert_eq!(packet_ids(&pkt), vec![42]);
    }
}
