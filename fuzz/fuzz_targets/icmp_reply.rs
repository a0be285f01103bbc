//! The ping targets' echo-reply parser: arbitrary packets (as a raw or ping
//! socket delivers them) never panic, and only echo replies yield a sequence.
#![no_main]
use hb_userspace::net::ping::parse_reply;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let (flags, pkt) = (data[0], &data[1..]);
    let (v6, raw) = (flags & 1 != 0, flags & 2 != 0);
    if let Some(_seq) = parse_reply(v6, raw, 0x4242, pkt) {
        let icmp_type = if raw && !v6 { pkt.get(((pkt[0] & 0x0f) as usize) * 4).copied() } else { pkt.first().copied() };
        assert_eq!(icmp_type, Some(if v6 { 129 } else { 0 }));
    }
});
