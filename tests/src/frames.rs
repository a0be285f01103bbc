//! Crafted frames for `BPF_PROG_TEST_RUN` and datagrams for real sockets.
//!
//! The XDP program does not verify MACs, so fixed-pattern MAC bytes are fine
//! here; the daemon-level tests use the real codec.

use hb_common::wire::{AuthAlg, Header, Status, HEADER_LEN, KIND_HEARTBEAT};

/// A heartbeat header for `(cluster, node, generation, seq)` with `payload`
/// zero bytes of payload and a SHA-1-sized MAC of 0xAB bytes.
pub fn header(cluster_id: u32, node_id: u32, generation: u64, seq: u64) -> Header {
    Header {
        kind: KIND_HEARTBEAT,
        alg: AuthAlg::Sha1,
        key_index: 1,
        cluster_id,
        node_id,
        generation,
        seq,
        send_time_ns: 0,
        flags: 0,
        status: Status::Up,
        payload_len: 0,
    }
}

/// The UDP payload for `h`, with `h.payload_len` payload bytes and a MAC
/// whose first bytes are `mac_tag` (rest 0xAB).
pub fn datagram(h: &Header, mac_tag: [u8; 4]) -> Vec<u8> {
    let mut d = vec![0u8; HEADER_LEN + h.payload_len as usize + h.alg.mac_len()];
    h.write((&mut d[..HEADER_LEN]).try_into().unwrap());
    let mac = HEADER_LEN + h.payload_len as usize;
    d[mac..].fill(0xab);
    d[mac..mac + 4].copy_from_slice(&mac_tag);
    d
}

/// Layer-3 wrapping for [`frame`].
#[derive(Clone, Copy, Debug)]
pub enum L3 {
    V4,
    V6,
    /// IPv4 behind an 802.1Q tag.
    V4Vlan,
    /// IPv4 with MF set (first fragment).
    V4Fragment,
    /// IPv4 carrying TCP instead of UDP.
    V4Tcp,
}

/// An Ethernet frame carrying `payload` in UDP to `dport` (UDP length field
/// = actual length unless `udp_len_override`).
pub fn frame(l3: L3, dport: u16, payload: &[u8], udp_len_override: Option<u16>) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 1]); // dst
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 2]); // src
    let udp_len = (8 + payload.len()) as u16;
    let mut udp = Vec::new();
    udp.extend_from_slice(&12345u16.to_be_bytes());
    udp.extend_from_slice(&dport.to_be_bytes());
    udp.extend_from_slice(&udp_len_override.unwrap_or(udp_len).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    let v4 = |f: &mut Vec<u8>, proto: u8, frags: u16| {
        f.extend_from_slice(&[0x45, 0]);
        f.extend_from_slice(&(20 + udp.len() as u16).to_be_bytes());
        f.extend_from_slice(&[0, 1]);
        f.extend_from_slice(&frags.to_be_bytes());
        f.extend_from_slice(&[64, proto, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1]);
    };
    match l3 {
        L3::V4 | L3::V4Tcp | L3::V4Fragment => {
            f.extend_from_slice(&0x0800u16.to_be_bytes());
            let proto = if matches!(l3, L3::V4Tcp) { 6 } else { 17 };
            let frags = if matches!(l3, L3::V4Fragment) {
                0x2000
            } else {
                0
            };
            v4(&mut f, proto, frags);
        }
        L3::V4Vlan => {
            f.extend_from_slice(&0x8100u16.to_be_bytes());
            f.extend_from_slice(&[0, 42]);
            f.extend_from_slice(&0x0800u16.to_be_bytes());
            v4(&mut f, 17, 0);
        }
        L3::V6 => {
            f.extend_from_slice(&0x86ddu16.to_be_bytes());
            f.extend_from_slice(&[0x60, 0, 0, 0]);
            f.extend_from_slice(&(udp.len() as u16).to_be_bytes());
            f.extend_from_slice(&[17, 64]);
            f.extend_from_slice(&[0xfd; 16]);
            f.extend_from_slice(&[0xfe; 16]);
        }
    }
    f.extend_from_slice(&udp);
    f
}
