//! The TLV payload decoder: never panics; accepted payloads re-encode to
//! something that decodes to the same value.
#![no_main]
use hb_userspace::proto::Payload;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Payload::decode(data) {
        let mut out = Vec::new();
        if p.encode(&mut out).is_ok() {
            assert_eq!(Payload::decode(&out).unwrap(), p);
        }
    }
});
