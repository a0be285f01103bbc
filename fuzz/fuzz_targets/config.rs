//! ha.cf, haresources and authkeys parsers: arbitrary text never panics,
//! and every error names its file.
#![no_main]
use std::path::Path;

use hb_userspace::config::{authkeys, haresources, hacf};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let nodes = vec!["alpha".to_string(), "beta".to_string()];
    for (file, r) in [
        ("ha.cf", hacf::parse(Path::new("ha.cf"), s, "alpha").err()),
        ("haresources", haresources::parse(Path::new("haresources"), s, &nodes).err()),
        ("authkeys", authkeys::parse(Path::new("authkeys"), s).err()),
    ] {
        if let Some(errs) = r {
            assert!(!errs.0.is_empty());
            for e in &errs.0 {
                assert!(e.to_string().starts_with(file));
            }
        }
    }
    let _ = hacf::node_names(s);
    let _ = haresources::parse_ip_spec(s);
});
