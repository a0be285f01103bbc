//! hb XDP fast path: validate and timestamp heartbeats on the heartbeat port.
//!
//! For every frame: Ethernet (one optional 802.1Q tag) -> IPv4 (unfragmented)
//! or IPv6 (UDP as next header) -> UDP with destination port `HB_PORT`.
//! Anything else is passed untouched, without touching a map.
//!
//! On the heartbeat port the fixed hb header is validated by the same
//! [`hb_common::wire::classify`] the daemon uses:
//! - another cluster id -> `Foreign` counter, `XDP_DROP` (FAQ q13);
//! - malformed -> the reject's counter, `XDP_DROP`;
//! - a node id that userspace did not register in `HB_PEERS` -> `UnknownNode`,
//!   `XDP_DROP`;
//! - otherwise: timestamp with `bpf_ktime_get_ns()`, update the per-link
//!   `HB_PEERS` entry, push a [`RingRecord`] to `HB_RING`, `XDP_PASS` so the
//!   daemon's socket receives the datagram and verifies its MAC.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::xdp_action,
    helpers::bpf_ktime_get_ns,
    macros::{map, xdp},
    maps::{HashMap, PerCpuArray, RingBuf},
    programs::XdpContext,
    Global,
};
use aya_log_ebpf::debug;
use hb_common::{
    maps::{PEERS_MAX, RING_BYTES},
    wire::{classify, Verdict, DEFAULT_PORT, HEADER_LEN, MAX_PAYLOAD},
    Counter, PeerKey, PeerState, RingRecord,
};
use network_types::{
    eth::EthHdr,
    ip::{Ipv4Hdr, Ipv6Hdr},
    udp::UdpHdr,
};

#[unsafe(no_mangle)]
static HB_PORT: Global<u16> = Global::new(DEFAULT_PORT);
#[unsafe(no_mangle)]
static HB_CLUSTER_ID: Global<u32> = Global::new(0);

#[map]
static HB_RING: RingBuf = RingBuf::with_byte_size(RING_BYTES, 0);
#[map]
static HB_PEERS: HashMap<PeerKey, PeerState> = HashMap::with_max_entries(PEERS_MAX, 0);
#[map]
static HB_COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(Counter::COUNT, 0);

const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const IPPROTO_UDP: u8 = 17;
const VLAN_HLEN: usize = 4;

#[xdp]
pub fn hb_xdp(ctx: XdpContext) -> u32 {
    process(&ctx)
}

#[inline(always)]
fn count(c: Counter) {
    if let Some(p) = HB_COUNTERS.get_ptr_mut(c as u32) {
        // Per-CPU slot: no other writer.
        unsafe { *p += 1 };
    }
}

/// Returns a bounds-checked pointer to a `T` at `offset` from the frame start.
#[inline(always)]
fn ptr_at<T>(ctx: &XdpContext, offset: usize) -> Option<*const T> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + offset + core::mem::size_of::<T>() > end {
        return None;
    }
    Some((start + offset) as *const T)
}

#[inline(always)]
fn process(ctx: &XdpContext) -> u32 {
    let Some(eth) = ptr_at::<EthHdr>(ctx, 0) else {
        return xdp_action::XDP_PASS;
    };
    let mut ether_type = u16::from_be(unsafe { (*eth).ether_type });
    let mut l3 = EthHdr::LEN;
    if ether_type == ETH_P_8021Q || ether_type == ETH_P_8021AD {
        // 802.1Q tag: TCI (2 bytes) then the inner ethertype (2 bytes).
        let Some(inner) = ptr_at::<[u8; 2]>(ctx, l3 + 2) else {
            return xdp_action::XDP_PASS;
        };
        ether_type = u16::from_be_bytes(unsafe { *inner });
        l3 += VLAN_HLEN;
    }

    let l4 = match ether_type {
        ETH_P_IP => {
            let Some(ip) = ptr_at::<Ipv4Hdr>(ctx, l3) else {
                return xdp_action::XDP_PASS;
            };
            let (vihl, proto, frags) = unsafe { ((*ip).vihl, (*ip).proto, (*ip).frags) };
            if proto != IPPROTO_UDP {
                return xdp_action::XDP_PASS;
            }
            // Fragments (MF set or offset != 0) are left to the stack: a
            // heartbeat is never fragmented, and a later fragment has no UDP
            // header to match on.
            if u16::from_be_bytes(frags) & 0x3fff != 0 {
                return xdp_action::XDP_PASS;
            }
            let ihl = ((vihl & 0x0f) as usize) * 4;
            if ihl < Ipv4Hdr::LEN {
                return xdp_action::XDP_PASS;
            }
            l3 + ihl
        }
        ETH_P_IPV6 => {
            let Some(ip) = ptr_at::<Ipv6Hdr>(ctx, l3) else {
                return xdp_action::XDP_PASS;
            };
            if unsafe { (*ip).next_hdr } != IPPROTO_UDP {
                return xdp_action::XDP_PASS;
            }
            l3 + Ipv6Hdr::LEN
        }
        _ => return xdp_action::XDP_PASS,
    };

    let Some(udp) = ptr_at::<UdpHdr>(ctx, l4) else {
        return xdp_action::XDP_PASS;
    };
    let (dst, udp_len) = unsafe { ((*udp).dst, (*udp).len) };
    if u16::from_be_bytes(dst) != HB_PORT.load() {
        return xdp_action::XDP_PASS;
    }
    heartbeat(ctx, l4 + UdpHdr::LEN, u16::from_be_bytes(udp_len) as usize)
}

/// A datagram on the heartbeat port; `payload` is its offset in the frame.
#[inline(always)]
fn heartbeat(ctx: &XdpContext, payload: usize, udp_len: usize) -> u32 {
    // The UDP length must cover its own header and fit in the frame
    // (trailing Ethernet padding is allowed).
    if udp_len < UdpHdr::LEN || ctx.data() + payload + (udp_len - UdpHdr::LEN) > ctx.data_end() {
        count(Counter::BadUdp);
        return xdp_action::XDP_DROP;
    }
    let datagram_len = udp_len - UdpHdr::LEN;
    let Some(hdr) = ptr_at::<[u8; HEADER_LEN]>(ctx, payload) else {
        count(Counter::Truncated);
        return xdp_action::XDP_DROP;
    };
    let hdr = unsafe { &*hdr };
    let (node_id, generation, seq) = match classify(hdr, datagram_len, HB_CLUSTER_ID.load()) {
        Verdict::Ours {
            node_id,
            generation,
            seq,
        } => (node_id, generation, seq),
        Verdict::Foreign { cluster_id } => {
            count(Counter::Foreign);
            debug!(
                ctx,
                "hb: dropped heartbeat of foreign cluster {:x}", cluster_id
            );
            return xdp_action::XDP_DROP;
        }
        Verdict::Malformed(reject) => {
            count(reject.counter());
            debug!(
                ctx,
                "hb: dropped malformed heartbeat (reason {})", reject as u8
            );
            return xdp_action::XDP_DROP;
        }
    };

    let now = unsafe { bpf_ktime_get_ns() };
    let ifindex = ctx.ingress_ifindex() as u32;
    let key = PeerKey { node_id, ifindex };
    let Some(peer) = HB_PEERS.get_ptr_mut(key) else {
        count(Counter::UnknownNode);
        debug!(
            ctx,
            "hb: dropped heartbeat of unknown node {:x} on if {}", node_id, ifindex
        );
        return xdp_action::XDP_DROP;
    };
    let prev = unsafe {
        let p = &mut *peer;
        let prev = p.last_ktime_ns;
        if prev != 0 && now > prev && now - prev > p.max_gap_ns {
            p.max_gap_ns = now - prev;
        }
        p.last_ktime_ns = now;
        p.count += 1;
        p.generation = generation;
        p.last_seq = seq;
        prev
    };

    // First 4 bytes of the MAC bind the ring record to this exact datagram.
    // classify() guaranteed payload_len <= MAX_PAYLOAD; the mask makes that
    // bound visible to the verifier.
    let payload_len = (u16::from_be_bytes([hdr[44], hdr[45]]) as usize) & 0x7ff;
    let mut mac_tag = [0u8; 4];
    if payload_len <= MAX_PAYLOAD {
        if let Some(tag) = ptr_at::<[u8; 4]>(ctx, payload + HEADER_LEN + payload_len) {
            mac_tag = unsafe { *tag };
        }
    }

    match HB_RING.reserve::<RingRecord>(0) {
        Some(mut entry) => {
            entry.write(RingRecord {
                ktime_ns: now,
                prev_ktime_ns: prev,
                generation,
                seq,
                node_id,
                ifindex,
                mac_tag,
                datagram_len: datagram_len as u32,
            });
            entry.submit(0);
        }
        None => count(Counter::RingFull),
    }
    count(Counter::Accepted);
    xdp_action::XDP_PASS
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
