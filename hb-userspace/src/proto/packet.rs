//! Whole datagrams: fixed header + TLV payload + MAC over both.
//!
//! Decoding checks, in order: the header (the same `classify` as the XDP
//! program), the key index and algorithm against authkeys, the MAC
//! (constant time), the payload, and that the node id matches the node name.
//! Only a datagram that passes all of them is a [`Heartbeat`].

use hb_common::wire::{Header, Reject, Status, Verdict, HEADER_LEN, KIND_HEARTBEAT};

use super::{auth, payload::Payload, PayloadError};
use crate::config::{AuthKey, AuthKeys};

/// An authenticated heartbeat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Heartbeat {
    pub header: Header,
    pub payload: Payload,
}

/// Why a datagram was not accepted; each kind is counted separately.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("heartbeat of foreign cluster {0:#x}")]
    Foreign(u32),
    #[error("malformed header: {}", .0.as_str())]
    Malformed(Reject),
    #[error("key index {0} is not in authkeys")]
    UnknownKey(u8),
    #[error("key {index} is {want} in authkeys but the packet uses {got}")]
    WrongAlg {
        index: u8,
        got: &'static str,
        want: &'static str,
    },
    #[error("MAC verification failed (wrong key, forged or corrupted)")]
    BadMac,
    #[error("bad payload: {0}")]
    Payload(#[from] PayloadError),
    #[error("node id {id:#x} does not belong to node name `{name}`")]
    NameMismatch { id: u32, name: String },
}

impl DecodeError {
    /// Counter name for `hb status`.
    pub fn counter(&self) -> &'static str {
        match self {
            DecodeError::Foreign(_) => "foreign_cluster",
            DecodeError::Malformed(_) => "malformed",
            DecodeError::UnknownKey(_) | DecodeError::WrongAlg { .. } => "unknown_key",
            DecodeError::BadMac => "bad_mac",
            DecodeError::Payload(_) => "bad_payload",
            DecodeError::NameMismatch { .. } => "name_mismatch",
        }
    }
}

/// The fields a sender fills in.
#[derive(Clone, Copy, Debug)]
pub struct SendInfo {
    pub cluster_id: u32,
    pub node_id: u32,
    pub generation: u64,
    pub seq: u64,
    pub send_time_ns: u64,
    pub status: Status,
}

/// Encodes and signs a heartbeat with `key`.
pub fn encode(info: &SendInfo, payload: &Payload, key: &AuthKey) -> Result<Vec<u8>, PayloadError> {
    let mut buf = vec![0u8; HEADER_LEN];
    payload.encode(&mut buf)?;
    let header = Header {
        kind: KIND_HEARTBEAT,
        alg: key.alg,
        key_index: key.index,
        cluster_id: info.cluster_id,
        node_id: info.node_id,
        generation: info.generation,
        seq: info.seq,
        send_time_ns: info.send_time_ns,
        flags: 0,
        status: info.status,
        payload_len: (buf.len() - HEADER_LEN) as u16,
    };
    header.write((&mut buf[..HEADER_LEN]).try_into().expect("header slice"));
    let mac = auth::compute(key, &buf);
    buf.extend_from_slice(&mac);
    Ok(buf)
}

/// The MAC bytes of a header-valid datagram (for matching XDP ring records).
pub fn mac_of<'a>(datagram: &'a [u8], header: &Header) -> &'a [u8] {
    &datagram[HEADER_LEN + header.payload_len as usize..]
}

/// Decodes and authenticates a datagram.
pub fn decode(datagram: &[u8], cluster_id: u32, keys: &AuthKeys) -> Result<Heartbeat, DecodeError> {
    let header = Header::parse(datagram, cluster_id).map_err(|v| match v {
        Verdict::Foreign { cluster_id } => DecodeError::Foreign(cluster_id),
        Verdict::Malformed(r) => DecodeError::Malformed(r),
        Verdict::Ours { .. } => unreachable!("parse only errs on rejects"),
    })?;
    let key = keys
        .get(header.key_index)
        .ok_or(DecodeError::UnknownKey(header.key_index))?;
    if key.alg != header.alg {
        return Err(DecodeError::WrongAlg {
            index: header.key_index,
            got: header.alg.name(),
            want: key.alg.name(),
        });
    }
    let body_len = HEADER_LEN + header.payload_len as usize;
    if !auth::verify(key, &datagram[..body_len], &datagram[body_len..]) {
        return Err(DecodeError::BadMac);
    }
    let payload = Payload::decode(&datagram[HEADER_LEN..body_len])?;
    if hb_common::node_id(payload.node_name.as_bytes()) != header.node_id {
        return Err(DecodeError::NameMismatch {
            id: header.node_id,
            name: payload.node_name,
        });
    }
    Ok(Heartbeat { header, payload })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::groupset::GroupSet;
    use hb_common::AuthAlg;

    pub(crate) fn keys() -> AuthKeys {
        AuthKeys {
            send: 1,
            keys: vec![
                AuthKey {
                    index: 1,
                    alg: AuthAlg::Sha256,
                    key: b"0123456789abcdef".to_vec(),
                },
                AuthKey {
                    index: 2,
                    alg: AuthAlg::Sha1,
                    key: b"old-key-material".to_vec(),
                },
            ],
            warnings: vec![],
        }
    }

    fn info() -> SendInfo {
        SendInfo {
            cluster_id: 0x1234_5678,
            node_id: hb_common::node_id(b"alpha"),
            generation: 3,
            seq: 9,
            send_time_ns: 1_700_000_000_000_000_000,
            status: Status::Up,
        }
    }

    fn payload() -> Payload {
        Payload {
            node_name: "alpha".into(),
            digest: 77,
            held: GroupSet::from_indices([0]),
            ..Default::default()
        }
    }

    #[test]
    fn round_trip_every_key() {
        let ks = keys();
        for k in &ks.keys {
            let d = encode(&info(), &payload(), k).unwrap();
            let hb = decode(&d, info().cluster_id, &ks).unwrap();
            assert_eq!(hb.payload, payload());
            assert_eq!(
                (hb.header.seq, hb.header.generation, hb.header.key_index),
                (9, 3, k.index)
            );
            assert_eq!(mac_of(&d, &hb.header).len(), k.alg.mac_len());
        }
    }

    /// Byte-exact: header, payload and HMAC-SHA256 of a fixed heartbeat.
    #[test]
    fn wire_vector_sha256() {
        let d = encode(&info(), &payload(), &keys().keys[0]).unwrap();
        let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
        let want_prefix = concat!(
            "48425850", "01", "01", "02", "01",       // magic ver kind alg=sha256 key=1
            "12345678", // cluster
        );
        assert!(hex.starts_with(want_prefix), "{hex}");
        assert_eq!(d.len(), 48 + 19 + 32);
        // Payload: NAME alpha, DIGEST 77, HELD {0}.
        assert_eq!(
            &d[48..67],
            &[1, 0, 5, b'a', b'l', b'p', b'h', b'a', 2, 0, 4, 0, 0, 0, 77, 3, 0, 1, 1]
        );
        // The MAC is HMAC-SHA256 over everything before it.
        let mac = auth::compute(&keys().keys[0], &d[..67]);
        assert_eq!(&d[67..], &mac[..]);
    }

    #[test]
    fn rejections_table() {
        let ks = keys();
        let good = encode(&info(), &payload(), &ks.keys[0]).unwrap();
        let cid = info().cluster_id;
        let flip = |i: usize| {
            let mut d = good.clone();
            d[i] ^= 1;
            d
        };
        let mut unknown_key = good.clone();
        unknown_key[7] = 9;
        let mut wrong_alg = good.clone();
        wrong_alg[7] = 2; // key 2 is sha1 but alg byte says sha256
        let forged_name = {
            let p = Payload {
                node_name: "beta".into(),
                ..payload()
            };
            encode(&info(), &p, &ks.keys[0]).unwrap()
        };
        let other_key = AuthKey {
            index: 1,
            alg: AuthAlg::Sha256,
            key: b"attacker".to_vec(),
        };
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            (
                "foreign",
                encode(
                    &SendInfo {
                        cluster_id: 1,
                        ..info()
                    },
                    &payload(),
                    &ks.keys[0],
                )
                .unwrap(),
                "foreign_cluster",
            ),
            ("truncated", good[..good.len() - 1].to_vec(), "malformed"),
            ("flipped payload bit", flip(50), "bad_mac"),
            ("flipped seq bit", flip(31), "bad_mac"),
            ("flipped mac bit", flip(good.len() - 1), "bad_mac"),
            ("unknown key", unknown_key, "unknown_key"),
            ("wrong alg", wrong_alg, "unknown_key"),
            (
                "wrong secret",
                encode(&info(), &payload(), &other_key).unwrap(),
                "bad_mac",
            ),
            ("name/id mismatch", forged_name, "name_mismatch"),
            ("empty", vec![], "malformed"),
        ];
        for (name, d, counter) in cases {
            let e = decode(&d, cid, &ks).expect_err(name);
            assert_eq!(e.counter(), counter, "{name}: {e}");
        }
    }
}
