//! Benchmarks (`cargo xtask bench`) and fuzzing (`cargo xtask fuzz`).
use std::{path::Path, process::Command};

/// Every cargo-fuzz target in fuzz/fuzz_targets.
pub const FUZZ_TARGETS: &[&str] = &[
    "packet",
    "payload",
    "config",
    "agent_output",
    "serial_deframer",
];

/// Runs every fuzz target for `secs` seconds, starting from the committed
/// seeds (fuzz/seeds/<target>) and a scratch corpus under target/.
pub fn fuzz(ws: &Path, secs: u64) -> Result<(), String> {
    let ok = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        return Err("cargo-fuzz is not installed: run `cargo xtask setup`".into());
    }
    for t in FUZZ_TARGETS {
        let corpus = ws.join("target/fuzz-corpus").join(t);
        std::fs::create_dir_all(&corpus).map_err(|e| format!("{}: {e}", corpus.display()))?;
        crate::run(
            Command::new("rustup")
                .args(["run", "nightly", "cargo", "fuzz", "run", t])
                .arg(&corpus)
                .arg(ws.join("fuzz/seeds").join(t))
                .args([
                    "--",
                    &format!("-max_total_time={secs}"),
                    "-rss_limit_mb=4096",
                    "-print_final_stats=1",
                ])
                .current_dir(ws),
        )?;
    }
    Ok(())
}

pub fn bench(_ws: &Path, _args: &[String]) -> Result<(), String> {
    Err("benchmarks are not implemented yet".into())
}
