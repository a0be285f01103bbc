//! `cargo xtask demo`: builds hb and runs the narrated two-node demo
//! cluster (tests/src/bin/hb-demo.rs) in network namespaces. Needs root.
use std::{path::Path, process::Command};

pub fn demo(ws: &Path, args: &[String]) -> Result<(), String> {
    crate::require_root("the demo creates network namespaces and loads XDP")?;
    crate::run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["run", "--quiet", "-p", "hb-tests", "--bin", "hb-demo", "--"])
            .args(args)
            .current_dir(ws),
    )
}
