//! Benchmarks (`cargo xtask bench`) and fuzzing (`cargo xtask fuzz`).
use std::{path::Path, process::Command};

/// Every cargo-fuzz target in fuzz/fuzz_targets.
pub const FUZZ_TARGETS: &[&str] = &[
    "packet",
    "payload",
    "config",
    "agent_output",
    "serial_deframer",
    "icmp_reply",
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

/// Builds release binaries and runs tests/src/bin/hb-bench: every figure
/// and its baseline in one run, report in bench-report/ (README.md, PNGs,
/// results.json). Arguments go to hb-bench (`--quick`, `--only LIST`,
/// `--out DIR`).
pub fn bench(ws: &Path, args: &[String]) -> Result<(), String> {
    crate::require_root("benchmarks create network namespaces, load XDP and pin real-time load")?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    crate::run(
        Command::new(&cargo)
            .args(["build", "--release", "-p", "hb-userspace", "--bin", "hb"])
            .current_dir(ws),
    )?;
    crate::run(
        Command::new(&cargo)
            .args([
                "run",
                "--release",
                "-p",
                "hb-tests",
                "--bin",
                "hb-bench",
                "--",
            ])
            .args(args)
            .env("HB_BIN", ws.join("target/release/hb"))
            .current_dir(ws),
    )
}
