//! The serial deframer: any byte stream, split anywhere, yields only
//! header-valid frames and bounded memory.
#![no_main]
use hb_common::wire::{classify, Verdict, HEADER_LEN};
use hb_userspace::net::serial::Deframer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut d = Deframer::default();
    let split = data.first().copied().unwrap_or(1).max(1) as usize;
    for chunk in data.chunks(split) {
        for f in d.push(chunk, 7) {
            let h: &[u8; HEADER_LEN] = f.first_chunk().expect("frames have a header");
            assert!(matches!(classify(h, f.len(), 7), Verdict::Ours { .. }));
        }
    }
});
