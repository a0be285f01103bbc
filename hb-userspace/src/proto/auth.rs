//! Packet authentication with the authkeys methods: HMAC-SHA256 (hb's
//! recommendation), HMAC-SHA1 and HMAC-MD5 (Heartbeat's methods; test
//! vectors below come from Debian's libplumb), and CRC-32 (integrity only,
//! no security: the config loader warns loudly when it is used).

use hmac::{Hmac, KeyInit, Mac};

use crate::config::AuthKey;
use hb_common::AuthAlg;

fn hmac<M: Mac + KeyInit>(key: &[u8], data: &[u8], out: &mut [u8]) {
    let mut m = <M as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length");
    m.update(data);
    out.copy_from_slice(&m.finalize().into_bytes());
}

/// Computes the MAC of `data` under `key`; returns `alg.mac_len()` bytes.
pub fn compute(key: &AuthKey, data: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; key.alg.mac_len()];
    match key.alg {
        AuthAlg::Sha256 => hmac::<Hmac<sha2::Sha256>>(&key.key, data, &mut out),
        AuthAlg::Sha1 => hmac::<Hmac<sha1::Sha1>>(&key.key, data, &mut out),
        AuthAlg::Md5 => hmac::<Hmac<md5::Md5>>(&key.key, data, &mut out),
        AuthAlg::Crc32 => out.copy_from_slice(&crc32fast::hash(data).to_be_bytes()),
    }
    out
}

/// Constant-time comparison of the expected MAC with `mac`.
pub fn verify(key: &AuthKey, data: &[u8], mac: &[u8]) -> bool {
    let want = compute(key, data);
    want.len() == mac.len() && want.iter().zip(mac).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn key(alg: AuthAlg, k: &[u8]) -> AuthKey {
        AuthKey {
            index: 1,
            alg,
            key: k.to_vec(),
        }
    }

    /// Heartbeat's classic-format test vector (reference notes 1.6): the same
    /// HMACs Debian's libplumb.so.2 computes for key "secret".
    const NOHEAD: &str = "t=status\nst=active\ndt=7530\nprotocol=1\nsrc=node1\n(1)srcuuid=AAECAwQFBgcICQoLDA0ODw==\nseq=2a\nhg=4b1f0c1d\nts=65a0b1c2\nld=0.00 0.01 0.05 1/123 4567\nttl=3\n";

    #[test]
    fn heartbeat_hmac_vectors() {
        assert_eq!(
            hex(&compute(&key(AuthAlg::Sha1, b"secret"), NOHEAD.as_bytes())),
            "aee8049f18ddf832186748bccbb7c3a77e63ba64"
        );
        assert_eq!(
            hex(&compute(&key(AuthAlg::Md5, b"secret"), NOHEAD.as_bytes())),
            "96587bc23acd67ff7fabe07df4ceb53e"
        );
    }

    #[test]
    fn rfc4231_sha256_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            hex(&compute(
                &key(AuthAlg::Sha256, b"Jefe"),
                b"what do ya want for nothing?"
            )),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn crc32_vector_and_verify() {
        // CRC-32/ISO-HDLC check value.
        assert_eq!(
            hex(&compute(&key(AuthAlg::Crc32, b""), b"123456789")),
            "cbf43926"
        );
        for alg in [AuthAlg::Sha256, AuthAlg::Sha1, AuthAlg::Md5, AuthAlg::Crc32] {
            let k = key(alg, b"k1");
            let mac = compute(&k, b"data");
            assert_eq!(mac.len(), alg.mac_len());
            assert!(verify(&k, b"data", &mac));
            assert!(!verify(&k, b"datA", &mac));
            assert!(!verify(&k, b"data", &mac[1..]));
            if alg != AuthAlg::Crc32 {
                assert!(
                    !verify(&key(alg, b"k2"), b"data", &mac),
                    "{alg:?}: wrong key"
                );
            }
        }
    }
}
