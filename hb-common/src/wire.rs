//! The fixed 48-byte hb heartbeat header and its one validation routine.
//!
//! ```text
//!  off len field        notes
//!   0   4  magic        "HBXP"
//!   4   1  version      1
//!   5   1  kind         1 = heartbeat
//!   6   1  auth alg     1 sha1, 2 sha256, 3 md5, 4 crc32  (HMAC over header+payload)
//!   7   1  key index    0..=15 (authkeys index)
//!   8   4  cluster id   FNV-1a of cluster name + node names (or `cluster_id`)
//!  12   4  node id      FNV-1a of the sender's node name
//!  16   8  generation   bumped at every daemon start (replay protection)
//!  24   8  seq          per-generation sequence number, starts at 1
//!  32   8  send time    sender's CLOCK_REALTIME, ns (diagnostics only)
//!  40   2  flags        reserved for extensions, ignored when unknown
//!  42   1  status       node status (see [`Status`])
//!  43   1  reserved     must be 0
//!  44   2  payload len  bytes of TLV payload following the header
//!  46   2  reserved     must be 0
//!  48   ..  payload, then the MAC (length fixed by the auth alg)
//! ```
//! All integers are big-endian (network order).
//!
//! [`classify`] is `#[inline(always)]`, branch-only and reads constant
//! offsets, so the eBPF verifier accepts it when the XDP program hands it a
//! bounds-checked `&[u8; HEADER_LEN]` pointing into the packet.

pub const MAGIC: [u8; 4] = *b"HBXP";
pub const VERSION: u8 = 1;
pub const HEADER_LEN: usize = 48;
/// Largest TLV payload accepted; keeps a whole packet under a 1500 MTU.
pub const MAX_PAYLOAD: usize = 1200;
/// Largest MAC of any algorithm.
pub const MAX_MAC_LEN: usize = 32;
/// Largest datagram hb ever sends or accepts.
pub const MAX_DATAGRAM: usize = HEADER_LEN + MAX_PAYLOAD + MAX_MAC_LEN;
/// Heartbeat's registered port (`ha-cluster`, 694/udp).
pub const DEFAULT_PORT: u16 = 694;

/// Message kinds.
pub const KIND_HEARTBEAT: u8 = 1;

/// Authentication algorithm of a packet (authkeys method).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum AuthAlg {
    Sha1 = 1,
    Sha256 = 2,
    Md5 = 3,
    Crc32 = 4,
}

impl AuthAlg {
    #[inline(always)]
    pub const fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::Sha1),
            2 => Some(Self::Sha256),
            3 => Some(Self::Md5),
            4 => Some(Self::Crc32),
            _ => None,
        }
    }

    /// Length of the trailing MAC / checksum in bytes.
    #[inline(always)]
    pub const fn mac_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Md5 => 16,
            Self::Crc32 => 4,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Md5 => "md5",
            Self::Crc32 => "crc",
        }
    }
}

/// Node status carried in every heartbeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Status {
    /// Started, still learning the cluster (within initdead); holds nothing.
    Init = 1,
    /// Member, may hold resources.
    Up = 2,
    /// Leaving gracefully: has released (or is releasing) everything.
    Shutdown = 3,
}

impl Status {
    pub const fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::Init),
            2 => Some(Self::Up),
            3 => Some(Self::Shutdown),
            _ => None,
        }
    }
}

/// Why a datagram on the heartbeat port was rejected at the header level.
/// Each has its own XDP counter (see [`crate::Counter`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reject {
    /// Shorter than the fixed header.
    Truncated,
    /// Does not start with [`MAGIC`].
    BadMagic,
    /// Unsupported version.
    BadVersion,
    /// Unknown message kind.
    BadKind,
    /// Unknown auth algorithm or key index > 15.
    BadAuth,
    /// Reserved bytes not zero.
    Reserved,
    /// payload len > [`MAX_PAYLOAD`] or header+payload+MAC != datagram length.
    BadLength,
    /// Unknown status byte.
    BadStatus,
}

impl Reject {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Truncated => "truncated (shorter than the 48-byte header)",
            Self::BadMagic => "bad magic (not an hb packet)",
            Self::BadVersion => "unsupported protocol version",
            Self::BadKind => "unknown message kind",
            Self::BadAuth => "unknown auth algorithm or key index > 15",
            Self::Reserved => "reserved header bytes not zero",
            Self::BadLength => "length mismatch (header + payload + MAC != datagram)",
            Self::BadStatus => "unknown node status",
        }
    }

    /// The XDP counter that counts this rejection.
    pub const fn counter(self) -> crate::Counter {
        use crate::Counter as C;
        match self {
            Self::Truncated => C::Truncated,
            Self::BadMagic => C::BadMagic,
            Self::BadVersion => C::BadVersion,
            Self::BadKind | Self::BadAuth | Self::Reserved | Self::BadStatus => C::BadHeader,
            Self::BadLength => C::BadLength,
        }
    }
}

/// Result of [`classify`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Header is well formed and belongs to our cluster. The MAC is *not*
    /// checked here (that is userspace's job).
    Ours {
        node_id: u32,
        generation: u64,
        seq: u64,
    },
    /// Well-formed hb header of another cluster (FAQ q13): counted, dropped.
    Foreign { cluster_id: u32 },
    /// Malformed: counted, dropped.
    Malformed(Reject),
}

#[inline(always)]
fn be16(h: &[u8; HEADER_LEN], off: usize) -> u16 {
    u16::from_be_bytes([h[off], h[off + 1]])
}

#[inline(always)]
fn be32(h: &[u8; HEADER_LEN], off: usize) -> u32 {
    u32::from_be_bytes([h[off], h[off + 1], h[off + 2], h[off + 3]])
}

#[inline(always)]
fn be64(h: &[u8; HEADER_LEN], off: usize) -> u64 {
    ((be32(h, off) as u64) << 32) | be32(h, off + 4) as u64
}

/// Validates the fixed header of a datagram of `datagram_len` bytes (UDP
/// payload) whose first [`HEADER_LEN`] bytes are `h`.
///
/// Checks, in order: magic, version, cluster id, kind, auth alg and key index,
/// reserved bytes, status, payload length bound, exact total length.
#[inline(always)]
pub fn classify(h: &[u8; HEADER_LEN], datagram_len: usize, cluster_id: u32) -> Verdict {
    if h[0] != MAGIC[0] || h[1] != MAGIC[1] || h[2] != MAGIC[2] || h[3] != MAGIC[3] {
        return Verdict::Malformed(Reject::BadMagic);
    }
    if h[4] != VERSION {
        return Verdict::Malformed(Reject::BadVersion);
    }
    let cid = be32(h, 8);
    if cid != cluster_id {
        return Verdict::Foreign { cluster_id: cid };
    }
    if h[5] != KIND_HEARTBEAT {
        return Verdict::Malformed(Reject::BadKind);
    }
    let mac_len = match AuthAlg::from_u8(h[6]) {
        Some(a) => a.mac_len(),
        None => return Verdict::Malformed(Reject::BadAuth),
    };
    if h[7] > 15 {
        return Verdict::Malformed(Reject::BadAuth);
    }
    if h[43] != 0 || h[46] != 0 || h[47] != 0 {
        return Verdict::Malformed(Reject::Reserved);
    }
    if Status::from_u8(h[42]).is_none() {
        return Verdict::Malformed(Reject::BadStatus);
    }
    let payload_len = be16(h, 44) as usize;
    if payload_len > MAX_PAYLOAD || HEADER_LEN + payload_len + mac_len != datagram_len {
        return Verdict::Malformed(Reject::BadLength);
    }
    Verdict::Ours {
        node_id: be32(h, 12),
        generation: be64(h, 16),
        seq: be64(h, 24),
    }
}

/// The decoded fixed header (userspace encode/decode; the XDP program only
/// needs [`classify`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub kind: u8,
    pub alg: AuthAlg,
    pub key_index: u8,
    pub cluster_id: u32,
    pub node_id: u32,
    pub generation: u64,
    pub seq: u64,
    pub send_time_ns: u64,
    pub flags: u16,
    pub status: Status,
    pub payload_len: u16,
}

impl Header {
    /// Writes the header into the first [`HEADER_LEN`] bytes of `out`.
    pub fn write(&self, out: &mut [u8; HEADER_LEN]) {
        out[0..4].copy_from_slice(&MAGIC);
        out[4] = VERSION;
        out[5] = self.kind;
        out[6] = self.alg as u8;
        out[7] = self.key_index;
        out[8..12].copy_from_slice(&self.cluster_id.to_be_bytes());
        out[12..16].copy_from_slice(&self.node_id.to_be_bytes());
        out[16..24].copy_from_slice(&self.generation.to_be_bytes());
        out[24..32].copy_from_slice(&self.seq.to_be_bytes());
        out[32..40].copy_from_slice(&self.send_time_ns.to_be_bytes());
        out[40..42].copy_from_slice(&self.flags.to_be_bytes());
        out[42] = self.status as u8;
        out[43] = 0;
        out[44..46].copy_from_slice(&self.payload_len.to_be_bytes());
        out[46] = 0;
        out[47] = 0;
    }

    /// Parses and validates a whole datagram's header for `cluster_id`;
    /// the same checks as the XDP program ([`classify`]).
    pub fn parse(datagram: &[u8], cluster_id: u32) -> Result<Header, Verdict> {
        let Some(h) = datagram.first_chunk::<HEADER_LEN>() else {
            return Err(Verdict::Malformed(Reject::Truncated));
        };
        match classify(h, datagram.len(), cluster_id) {
            Verdict::Ours { .. } => {}
            other => return Err(other),
        }
        Ok(Header {
            kind: h[5],
            // classify() checked both of these.
            alg: AuthAlg::from_u8(h[6]).ok_or(Verdict::Malformed(Reject::BadAuth))?,
            key_index: h[7],
            cluster_id: be32(h, 8),
            node_id: be32(h, 12),
            generation: be64(h, 16),
            seq: be64(h, 24),
            send_time_ns: be64(h, 32),
            flags: be16(h, 40),
            status: Status::from_u8(h[42]).ok_or(Verdict::Malformed(Reject::BadStatus))?,
            payload_len: be16(h, 44),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        Header {
            kind: KIND_HEARTBEAT,
            alg: AuthAlg::Sha1,
            key_index: 1,
            cluster_id: 0x0102_0304,
            node_id: 0xa1b2_c3d4,
            generation: 0x1122_3344_5566_7788,
            seq: 42,
            send_time_ns: 0x0000_0001_0000_0002,
            flags: 0,
            status: Status::Up,
            payload_len: 3,
        }
    }

    fn datagram(h: &Header) -> [u8; HEADER_LEN + 3 + 20] {
        let mut d = [0u8; HEADER_LEN + 3 + 20];
        h.write((&mut d[..HEADER_LEN]).try_into().unwrap());
        d
    }

    /// Byte-exact layout: any change to the wire format must change this test.
    #[test]
    fn header_wire_vector() {
        let mut out = [0u8; HEADER_LEN];
        sample().write(&mut out);
        let want: [u8; HEADER_LEN] = [
            b'H', b'B', b'X', b'P', 1, 1, 1, 1, // magic version kind alg key
            0x01, 0x02, 0x03, 0x04, // cluster
            0xa1, 0xb2, 0xc3, 0xd4, // node
            0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, // generation
            0, 0, 0, 0, 0, 0, 0, 42, // seq
            0, 0, 0, 1, 0, 0, 0, 2, // send time
            0, 0, 2, 0, 0, 3, 0, 0, // flags status rsvd payload_len rsvd
        ];
        assert_eq!(out, want);
    }

    #[test]
    fn parse_roundtrip() {
        let h = sample();
        let d = datagram(&h);
        assert_eq!(Header::parse(&d, h.cluster_id), Ok(h));
        assert_eq!(
            classify(d.first_chunk().unwrap(), d.len(), h.cluster_id),
            Verdict::Ours {
                node_id: h.node_id,
                generation: h.generation,
                seq: 42
            }
        );
    }

    #[test]
    fn classify_rejections_table() {
        let base = datagram(&sample());
        let cid = sample().cluster_id;
        type Mutate = fn(&mut [u8; HEADER_LEN + 23]) -> usize;
        let cases: &[(&str, Mutate, Verdict)] = &[
            (
                "magic",
                |d| {
                    d[0] = b'X';
                    d.len()
                },
                Verdict::Malformed(Reject::BadMagic),
            ),
            (
                "version",
                |d| {
                    d[4] = 2;
                    d.len()
                },
                Verdict::Malformed(Reject::BadVersion),
            ),
            (
                "foreign",
                |d| {
                    d[11] = 9;
                    d.len()
                },
                Verdict::Foreign {
                    cluster_id: 0x0102_0309,
                },
            ),
            (
                "kind",
                |d| {
                    d[5] = 7;
                    d.len()
                },
                Verdict::Malformed(Reject::BadKind),
            ),
            (
                "alg0",
                |d| {
                    d[6] = 0;
                    d.len()
                },
                Verdict::Malformed(Reject::BadAuth),
            ),
            (
                "alg5",
                |d| {
                    d[6] = 5;
                    d.len()
                },
                Verdict::Malformed(Reject::BadAuth),
            ),
            (
                "key16",
                |d| {
                    d[7] = 16;
                    d.len()
                },
                Verdict::Malformed(Reject::BadAuth),
            ),
            (
                "rsvd43",
                |d| {
                    d[43] = 1;
                    d.len()
                },
                Verdict::Malformed(Reject::Reserved),
            ),
            (
                "rsvd47",
                |d| {
                    d[47] = 1;
                    d.len()
                },
                Verdict::Malformed(Reject::Reserved),
            ),
            (
                "status",
                |d| {
                    d[42] = 0;
                    d.len()
                },
                Verdict::Malformed(Reject::BadStatus),
            ),
            (
                "short",
                |d| d.len() - 1,
                Verdict::Malformed(Reject::BadLength),
            ),
            (
                "long",
                |d| d.len() + 1,
                Verdict::Malformed(Reject::BadLength),
            ),
            (
                "alg changes mac len",
                |d| {
                    d[6] = 2;
                    d.len()
                },
                Verdict::Malformed(Reject::BadLength),
            ),
            (
                "huge payload",
                |d| {
                    d[44] = 0xff;
                    d.len()
                },
                Verdict::Malformed(Reject::BadLength),
            ),
        ];
        for (name, mutate, want) in cases {
            let mut d = base;
            let len = mutate(&mut d);
            let got = classify(d.first_chunk().unwrap(), len, cid);
            assert_eq!(got, *want, "case {name}");
        }
    }

    #[test]
    fn parse_truncated() {
        assert_eq!(
            Header::parse(&[0u8; 47], 1),
            Err(Verdict::Malformed(Reject::Truncated))
        );
    }

    #[test]
    fn every_alg_round_trips() {
        for v in 0..=255u8 {
            if let Some(a) = AuthAlg::from_u8(v) {
                assert_eq!(a as u8, v);
                assert!(a.mac_len() <= MAX_MAC_LEN);
            }
        }
    }
}
