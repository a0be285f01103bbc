//! The heartbeat payload: type-length-value fields after the fixed header.
//!
//! ```text
//! TLV := type:u8 len:u16be value[len]
//! 1 NAME      sender node name (1..=64 bytes, UTF-8)         required
//! 2 DIGEST    u32 config digest (nodes + haresources)        required
//! 3 HELD      group bitmap: groups the sender holds (running, starting or stopping)
//! 4 STANDBY   group bitmap: groups the sender asks not to be given
//! 5 FAILED    group bitmap: groups that failed on the sender (not eligible there)
//! 6 PING      u16 reachable ping targets, u16 configured ping targets
//! 7 TAKEOVER  u32 epoch + group bitmap: "everyone else: stand by for these"
//! 8 TIMING    u32 keepalive (us), u32 deadtime (ms) of the sender (diagnostics)
//! ```
//! Unknown types are skipped (forward compatibility); a known type twice, a
//! bad length or a missing required field rejects the packet.

use crate::groupset::GroupSet;

const T_NAME: u8 = 1;
const T_DIGEST: u8 = 2;
const T_HELD: u8 = 3;
const T_STANDBY: u8 = 4;
const T_FAILED: u8 = 5;
const T_PING: u8 = 6;
const T_TAKEOVER: u8 = 7;
const T_TIMING: u8 = 8;

pub const MAX_NAME: usize = 64;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Payload {
    pub node_name: String,
    pub digest: u32,
    pub held: GroupSet,
    pub standby: GroupSet,
    pub failed: GroupSet,
    /// (reachable, configured) ping targets.
    pub ping: Option<(u16, u16)>,
    /// (epoch, groups) of an outstanding takeover request.
    pub takeover: Option<(u32, GroupSet)>,
    /// (keepalive us, deadtime ms).
    pub timing: Option<(u32, u32)>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("TLV at offset {0} is truncated")]
    Truncated(usize),
    #[error("TLV type {0} appears twice")]
    Duplicate(u8),
    #[error("TLV type {ty} has invalid length {len}")]
    BadLength { ty: u8, len: usize },
    #[error("node name is empty, longer than {MAX_NAME} bytes or not UTF-8")]
    BadName,
    #[error("required field {0} is missing")]
    Missing(&'static str),
    #[error("payload of {0} bytes exceeds the {max} byte limit", max = hb_common::wire::MAX_PAYLOAD)]
    TooLarge(usize),
}

fn put(out: &mut Vec<u8>, ty: u8, value: &[u8]) {
    out.push(ty);
    out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    out.extend_from_slice(value);
}

impl Payload {
    /// Appends the encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), PayloadError> {
        let start = out.len();
        if self.node_name.is_empty() || self.node_name.len() > MAX_NAME {
            return Err(PayloadError::BadName);
        }
        put(out, T_NAME, self.node_name.as_bytes());
        put(out, T_DIGEST, &self.digest.to_be_bytes());
        for (ty, set) in [
            (T_HELD, &self.held),
            (T_STANDBY, &self.standby),
            (T_FAILED, &self.failed),
        ] {
            if !set.is_empty() {
                put(out, ty, set.as_bytes());
            }
        }
        if let Some((r, t)) = self.ping {
            let mut v = r.to_be_bytes().to_vec();
            v.extend_from_slice(&t.to_be_bytes());
            put(out, T_PING, &v);
        }
        if let Some((epoch, set)) = &self.takeover {
            let mut v = epoch.to_be_bytes().to_vec();
            v.extend_from_slice(set.as_bytes());
            put(out, T_TAKEOVER, &v);
        }
        if let Some((k, d)) = self.timing {
            let mut v = k.to_be_bytes().to_vec();
            v.extend_from_slice(&d.to_be_bytes());
            put(out, T_TIMING, &v);
        }
        let len = out.len() - start;
        if len > hb_common::wire::MAX_PAYLOAD {
            out.truncate(start);
            return Err(PayloadError::TooLarge(len));
        }
        Ok(())
    }

    pub fn decode(mut b: &[u8]) -> Result<Payload, PayloadError> {
        let total = b.len();
        let mut p = Payload::default();
        let mut seen = 0u32;
        let (mut name, mut digest) = (false, false);
        while !b.is_empty() {
            let off = total - b.len();
            if b.len() < 3 {
                return Err(PayloadError::Truncated(off));
            }
            let ty = b[0];
            let len = u16::from_be_bytes([b[1], b[2]]) as usize;
            if b.len() < 3 + len {
                return Err(PayloadError::Truncated(off));
            }
            let v = &b[3..3 + len];
            b = &b[3 + len..];
            if (1..=31).contains(&ty) {
                if seen & (1 << ty) != 0 {
                    return Err(PayloadError::Duplicate(ty));
                }
                seen |= 1 << ty;
            }
            let bad = || PayloadError::BadLength { ty, len };
            match ty {
                T_NAME => {
                    if v.is_empty() || v.len() > MAX_NAME {
                        return Err(PayloadError::BadName);
                    }
                    p.node_name = std::str::from_utf8(v)
                        .map_err(|_| PayloadError::BadName)?
                        .to_string();
                    name = true;
                }
                T_DIGEST => {
                    p.digest = u32::from_be_bytes(v.try_into().map_err(|_| bad())?);
                    digest = true;
                }
                T_HELD => p.held = GroupSet::from_bytes(v),
                T_STANDBY => p.standby = GroupSet::from_bytes(v),
                T_FAILED => p.failed = GroupSet::from_bytes(v),
                T_PING => {
                    let a: [u8; 4] = v.try_into().map_err(|_| bad())?;
                    p.ping = Some((
                        u16::from_be_bytes([a[0], a[1]]),
                        u16::from_be_bytes([a[2], a[3]]),
                    ));
                }
                T_TAKEOVER => {
                    if v.len() < 4 {
                        return Err(bad());
                    }
                    let epoch = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
                    p.takeover = Some((epoch, GroupSet::from_bytes(&v[4..])));
                }
                T_TIMING => {
                    let a: [u8; 8] = v.try_into().map_err(|_| bad())?;
                    p.timing = Some((
                        u32::from_be_bytes([a[0], a[1], a[2], a[3]]),
                        u32::from_be_bytes([a[4], a[5], a[6], a[7]]),
                    ));
                }
                _ => {} // unknown: skip
            }
        }
        if !name {
            return Err(PayloadError::Missing("NAME"));
        }
        if !digest {
            return Err(PayloadError::Missing("DIGEST"));
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn sample() -> Payload {
        Payload {
            node_name: "alpha".into(),
            digest: 0xdead_beef,
            held: GroupSet::from_indices([0, 9]),
            standby: GroupSet::new(),
            failed: GroupSet::from_indices([1]),
            ping: Some((1, 2)),
            takeover: Some((7, GroupSet::from_indices([2]))),
            timing: Some((10_000, 100)),
        }
    }

    #[test]
    fn wire_vector() {
        let mut out = Vec::new();
        sample().encode(&mut out).unwrap();
        let want: &[u8] = &[
            1, 0, 5, b'a', b'l', b'p', b'h', b'a', // NAME
            2, 0, 4, 0xde, 0xad, 0xbe, 0xef, // DIGEST
            3, 0, 2, 0x01, 0x02, // HELD {0, 9}
            5, 0, 1, 0x02, // FAILED {1}
            6, 0, 4, 0, 1, 0, 2, // PING 1/2
            7, 0, 5, 0, 0, 0, 7, 0x04, // TAKEOVER epoch 7 {2}
            8, 0, 8, 0, 0, 0x27, 0x10, 0, 0, 0, 100, // TIMING 10ms/100ms
        ];
        assert_eq!(out, want);
        assert_eq!(Payload::decode(&out).unwrap(), sample());
    }

    #[test]
    fn minimal_and_unknown_fields() {
        let mut out = Vec::new();
        let p = Payload {
            node_name: "b".into(),
            ..Default::default()
        };
        p.encode(&mut out).unwrap();
        out.extend_from_slice(&[200, 0, 2, 9, 9]); // unknown type: skipped
        assert_eq!(Payload::decode(&out).unwrap(), p);
    }

    #[test]
    fn decode_errors_table() {
        let cases: &[(&[u8], PayloadError)] = &[
            (&[1, 0], PayloadError::Truncated(0)),
            (&[1, 0, 5, b'a'], PayloadError::Truncated(0)),
            (&[1, 0, 0], PayloadError::BadName),
            (&[1, 0, 2, 0xff, 0xfe], PayloadError::BadName),
            (&[1, 0, 1, b'a', 1, 0, 1, b'b'], PayloadError::Duplicate(1)),
            (
                &[1, 0, 1, b'a', 2, 0, 3, 0, 0, 0],
                PayloadError::BadLength { ty: 2, len: 3 },
            ),
            (&[1, 0, 1, b'a'], PayloadError::Missing("DIGEST")),
            (&[2, 0, 4, 0, 0, 0, 0], PayloadError::Missing("NAME")),
            (
                &[1, 0, 1, b'a', 2, 0, 4, 0, 0, 0, 0, 6, 0, 1, 0],
                PayloadError::BadLength { ty: 6, len: 1 },
            ),
            (
                &[1, 0, 1, b'a', 2, 0, 4, 0, 0, 0, 0, 7, 0, 2, 0, 0],
                PayloadError::BadLength { ty: 7, len: 2 },
            ),
        ];
        for (bytes, want) in cases {
            assert_eq!(Payload::decode(bytes).as_ref(), Err(want), "{bytes:?}");
        }
    }

    #[test]
    fn oversized_payload_is_refused() {
        let p = Payload {
            node_name: "a".into(),
            held: GroupSet::from_indices([1023 * 10]),
            ..Default::default()
        };
        let mut out = vec![9];
        assert!(matches!(p.encode(&mut out), Err(PayloadError::TooLarge(_))));
        assert_eq!(out, vec![9], "nothing appended on error");
        let long = Payload {
            node_name: "x".repeat(65),
            ..Default::default()
        };
        assert_eq!(long.encode(&mut Vec::new()), Err(PayloadError::BadName));
    }
}
