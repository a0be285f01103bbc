//! Kernel/user shared map layouts: ring records, per-peer state, counters,
//! and the names of the maps and globals of the XDP program.

/// Name of the XDP program in the object file.
pub const PROG_NAME: &str = "hb_xdp";
/// `RingBuf` of [`RingRecord`]s, one per accepted heartbeat.
pub const MAP_RING: &str = "HB_RING";
/// `HashMap<PeerKey, PeerState>`, pre-populated by userspace with every
/// configured node on every attached interface. The XDP program only updates
/// existing entries, so unknown senders cannot grow it.
pub const MAP_PEERS: &str = "HB_PEERS";
/// `PerCpuArray<u64>` indexed by [`Counter`].
pub const MAP_COUNTERS: &str = "HB_COUNTERS";
/// Global (`.rodata`) set at load time: UDP port in host order (`u16`).
pub const GLOBAL_PORT: &str = "HB_PORT";
/// Global set at load time: our cluster id (`u32`).
pub const GLOBAL_CLUSTER_ID: &str = "HB_CLUSTER_ID";

/// Ring buffer size in bytes (power of two, multiple of the page size).
pub const RING_BYTES: u32 = 1 << 20;
/// Max entries of the peers map (nodes x interfaces).
pub const PEERS_MAX: u32 = 4096;

/// One accepted heartbeat as seen by the XDP program (48 bytes).
///
/// Userspace matches it to the datagram it later reads from the socket by
/// `(node_id, generation, seq, ifindex)` plus the first 4 MAC bytes, and only
/// then - after verifying that datagram's MAC - credits `ktime_ns` as the
/// arrival time.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingRecord {
    /// `bpf_ktime_get_ns()` at XDP time (CLOCK_MONOTONIC).
    pub ktime_ns: u64,
    /// Arrival time of the previous heartbeat from this node on this
    /// interface, 0 if none (unauthenticated; diagnostics).
    pub prev_ktime_ns: u64,
    pub generation: u64,
    pub seq: u64,
    pub node_id: u32,
    pub ifindex: u32,
    /// First 4 bytes of the packet's MAC (every algorithm has at least 4).
    pub mac_tag: [u8; 4],
    /// UDP payload length.
    pub datagram_len: u32,
}

impl RingRecord {
    pub const SIZE: usize = core::mem::size_of::<Self>();
}

/// Key of the per-peer map: one entry per (node, interface) link.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PeerKey {
    pub node_id: u32,
    pub ifindex: u32,
}

/// Kernel-side per-link state, updated for every header-valid heartbeat.
///
/// This is written *before* the MAC is verified, so userspace never bases a
/// membership decision on it alone; it shows what reached the host (for
/// `hb status`, and to tell "never arrived" from "arrived but failed auth").
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerState {
    pub last_ktime_ns: u64,
    pub count: u64,
    pub generation: u64,
    pub last_seq: u64,
    /// Largest gap between consecutive arrivals seen by the kernel.
    pub max_gap_ns: u64,
}

/// Indices into the per-CPU counters map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Counter {
    /// Header-valid heartbeats of our cluster, passed to the stack.
    Accepted = 0,
    /// Well-formed hb packets of another cluster id (dropped).
    Foreign = 1,
    /// Too short for an hb header (dropped).
    Truncated = 2,
    /// Port matched, magic did not (dropped).
    BadMagic = 3,
    /// Unsupported protocol version (dropped).
    BadVersion = 4,
    /// Bad kind / auth / reserved bytes / status (dropped).
    BadHeader = 5,
    /// Length fields disagree with the datagram (dropped).
    BadLength = 6,
    /// Header valid, but the node id is not a configured node (dropped).
    UnknownNode = 7,
    /// Ring buffer full: record lost (packet still passed).
    RingFull = 8,
    /// UDP/IP headers inconsistent (UDP length vs frame) on our port (dropped).
    BadUdp = 9,
}

impl Counter {
    pub const COUNT: u32 = 10;
    pub const ALL: [Counter; Self::COUNT as usize] = [
        Self::Accepted,
        Self::Foreign,
        Self::Truncated,
        Self::BadMagic,
        Self::BadVersion,
        Self::BadHeader,
        Self::BadLength,
        Self::UnknownNode,
        Self::RingFull,
        Self::BadUdp,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Foreign => "foreign_cluster",
            Self::Truncated => "truncated",
            Self::BadMagic => "bad_magic",
            Self::BadVersion => "bad_version",
            Self::BadHeader => "bad_header",
            Self::BadLength => "bad_length",
            Self::UnknownNode => "unknown_node",
            Self::RingFull => "ring_full",
            Self::BadUdp => "bad_udp",
        }
    }
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: plain #[repr(C)] integers/byte arrays without padding
    // (checked by the size assertions below).
    unsafe impl aya::Pod for super::RingRecord {}
    unsafe impl aya::Pod for super::PeerKey {}
    unsafe impl aya::Pod for super::PeerState {}
}

const _: () = assert!(core::mem::size_of::<RingRecord>() == 48);
const _: () = assert!(core::mem::size_of::<PeerKey>() == 8);
const _: () = assert!(core::mem::size_of::<PeerState>() == 40);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_dense_and_named_uniquely() {
        for (i, c) in Counter::ALL.iter().enumerate() {
            assert_eq!(*c as u32, i as u32);
            for d in &Counter::ALL[..i] {
                assert_ne!(c.name(), d.name());
            }
        }
    }
}
