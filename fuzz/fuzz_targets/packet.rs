//! The whole datagram decoder (header, key lookup, MAC, payload, name/id),
//! with the XDP classifier checked for agreement: anything the decoder
//! accepts, the kernel's classify() must accept too. Also round-trips
//! every accepted packet through the encoder.
#![no_main]
use hb_common::wire::{classify, Verdict, HEADER_LEN};
use hb_userspace::{
    config::{AuthKey, AuthKeys},
    proto::{self, SendInfo},
};
use libfuzzer_sys::fuzz_target;

fn keys() -> AuthKeys {
    AuthKeys {
        send: 1,
        keys: vec![
            AuthKey { index: 1, alg: hb_common::AuthAlg::Sha256, key: b"fuzz-key-0123456789".to_vec() },
            AuthKey { index: 2, alg: hb_common::AuthAlg::Crc32, key: Vec::new() },
        ],
        warnings: Vec::new(),
    }
}

fuzz_target!(|data: &[u8]| {
    let ks = keys();
    let cid: u32 = 0x1234_5678;
    // Arbitrary bytes, and the same bytes with a valid CRC appended under
    // a plausible header, so the payload decoder is reached too.
    let mut candidates = vec![data.to_vec()];
    if data.len() >= HEADER_LEN {
        let mut d = data.to_vec();
        d[0..4].copy_from_slice(b"HBXP");
        d[4] = 1;
        d[5] = 1;
        d[6] = 4;
        d[7] = 2;
        d[8..12].copy_from_slice(&cid.to_be_bytes());
        d[43] = 0;
        d[46] = 0;
        d[47] = 0;
        d[42] = 1 + d[42] % 3;
        let plen = (d.len() - HEADER_LEN).min(1200) as u16;
        d.truncate(HEADER_LEN + plen as usize);
        d[44..46].copy_from_slice(&plen.to_be_bytes());
        let crc = crc32fast_hash(&d);
        d.extend_from_slice(&crc.to_be_bytes());
        candidates.push(d);
    }
    for d in candidates {
        if let Ok(hb) = proto::decode(&d, cid, &ks) {
            let h: &[u8; HEADER_LEN] = d.first_chunk().unwrap();
            assert!(matches!(classify(h, d.len(), cid), Verdict::Ours { .. }), "decoder accepted what XDP drops");
            let info = SendInfo {
                cluster_id: cid,
                node_id: hb.header.node_id,
                generation: hb.header.generation,
                seq: hb.header.seq,
                send_time_ns: hb.header.send_time_ns,
                status: hb.header.status,
            };
            let key = ks.get(hb.header.key_index).unwrap();
            let again = proto::encode(&info, &hb.payload, key).expect("re-encode");
            let hb2 = proto::decode(&again, cid, &ks).expect("round trip");
            assert_eq!(hb2.payload, hb.payload);
        }
    }
});

fn crc32fast_hash(d: &[u8]) -> u32 {
    let key = AuthKey { index: 2, alg: hb_common::AuthAlg::Crc32, key: Vec::new() };
    let m = hb_userspace::proto::auth::compute(&key, d);
    u32::from_be_bytes([m[0], m[1], m[2], m[3]])
}
