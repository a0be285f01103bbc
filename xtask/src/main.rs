//! `cargo xtask <command>`: project automation (std only, so it builds in
//! seconds on a fresh machine).
//!
//! - `setup`       installs rust-src for nightly and bpf-linker 0.10.4 (idempotent)
//! - `build-ebpf`  builds the XDP object (same recipe as hb-userspace/build.rs)
//! - `lint-ebpf`   rustfmt --check and clippy -D warnings on the eBPF crate
//! - `run -- ARGS` builds everything (release) and runs `hb ARGS`
//! - `test`        the README's test command: fmt, clippy, eBPF lint, all tests
//! - `demo`        the README's main job: a two-node demo cluster in namespaces
//! - `bench`       the benchmark suite, writing a markdown report
//! - `fuzz`        runs every fuzz target for a bounded time

mod bench;
mod demo;

use std::{
    path::{Path, PathBuf},
    process::{Command, ExitCode},
};

/// The eBPF build recipe shared with hb-userspace/build.rs.
mod ebpf {
    include!("../../hb-userspace/build_ebpf.rs");
}
use ebpf::{build_ebpf, ebpf_target_dir};

pub const BPF_LINKER_VERSION: &str = "0.10.4";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Runs a command (in the workspace unless it has its own directory),
/// echoing it; Err on failure.
pub fn run(cmd: &mut Command) -> Result<(), String> {
    eprintln!("+ {:?}", cmd);
    if cmd.get_current_dir().is_none() {
        cmd.current_dir(workspace());
    }
    let st = cmd
        .status()
        .map_err(|e| format!("spawn {:?}: {e}", cmd.get_program()))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("{:?} failed: {st}", cmd.get_program()))
    }
}

/// Refuses politely when not root.
pub fn require_root(why: &str) -> Result<(), String> {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("1").to_string())
        })
        .unwrap_or_default();
    if uid == "0" {
        Ok(())
    } else {
        Err(format!(
            "must run as root: {why} (try `sudo -E cargo xtask ...`)"
        ))
    }
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// Debian packages the tests, the demo and the benchmarks use.
pub const DEB_PACKAGES: &[&str] = &[
    "iproute2",        // ip, bridge, tc (netns tests, netem)
    "iputils-ping",    // client pings
    "procps",          // pgrep
    "socat",           // serial links on pty pairs
    "resource-agents", // OCF Dummy and IPaddr2, send_arp
    "keepalived",      // benchmark baseline
    "stress-ng",       // CPU starvation benchmark
    "gnuplot-nox",     // benchmark plots
    "iptables",        // loss (statistic) and delay (NFQUEUE) injection
];

fn missing_packages() -> Vec<&'static str> {
    DEB_PACKAGES
        .iter()
        .copied()
        .filter(|p| {
            !Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", p])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
                .unwrap_or(false)
        })
        .collect()
}

fn setup() -> Result<(), String> {
    let missing = missing_packages();
    if !missing.is_empty() {
        if require_root("installing Debian packages").is_ok() {
            run(Command::new("apt-get").arg("update").arg("-qq"))?;
            run(Command::new("apt-get")
                .args(["install", "-y", "-qq", "--no-install-recommends"])
                .args(&missing)
                .env("DEBIAN_FRONTEND", "noninteractive"))?;
        } else {
            eprintln!(
                "missing Debian packages (install as root): apt-get install {}",
                missing.join(" ")
            );
        }
    }
    run(Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", "nightly"]))?;
    let have = Command::new("bpf-linker")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    if have.contains(BPF_LINKER_VERSION) {
        eprintln!("bpf-linker {BPF_LINKER_VERSION} already installed");
    } else {
        // 0.11+ needs a system LLVM 23 that Debian 12 lacks; 0.10.4 uses the
        // Rust toolchain's own libLLVM (see ../shared/docs/ebpf-toolchain.md).
        run(cargo().args([
            "install",
            &format!("bpf-linker@{BPF_LINKER_VERSION}"),
            "--locked",
            "--force",
        ]))?;
    }
    if Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
    {
        eprintln!("cargo-fuzz already installed");
    } else {
        run(cargo().args(["install", "cargo-fuzz", "--locked"]))?;
    }
    Ok(())
}

fn lint_ebpf() -> Result<(), String> {
    let dir = workspace().join("hb-ebpf");
    let target = ebpf_target_dir(&workspace());
    run(Command::new("rustup")
        .args(["run", "nightly", "cargo", "fmt", "--check"])
        .current_dir(&dir))?;
    run(Command::new("rustup")
        .args([
            "run",
            "nightly",
            "cargo",
            "clippy",
            "--release",
            "--target-dir",
        ])
        .arg(&target)
        .args(["--", "-D", "warnings"])
        .current_dir(&dir))
}

fn test(extra: &[String]) -> Result<(), String> {
    setup()?;
    require_root("the integration tests create network namespaces and load XDP programs")?;
    run(cargo().args(["fmt", "--all", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]))?;
    lint_ebpf()?;
    // Integration tests start daemons and namespaces; two test threads keep
    // timing-sensitive cluster tests honest on a 2-core machine.
    let mut cmd = cargo();
    cmd.args(["test", "--workspace", "--locked", "--", "--test-threads=2"]);
    cmd.args(extra);
    run(&mut cmd)?;
    fuzz_smoke()
}

/// Runs every fuzz target over its seed corpus plus a short random run
/// (bounded, for CI), when cargo-fuzz is installed.
fn fuzz_smoke() -> Result<(), String> {
    bench::fuzz(&workspace(), 20)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = match args.split_first() {
        Some((c, r)) => (c.as_str(), r),
        None => ("help", &[][..]),
    };
    let rest: Vec<String> = rest.iter().filter(|a| *a != "--").cloned().collect();
    let result = match cmd {
        "setup" => setup(),
        "build-ebpf" => build_ebpf(&workspace()).map(|p| println!("{}", p.display())),
        "lint-ebpf" => lint_ebpf(),
        "run" => run(cargo().args(["build", "--release", "-p", "hb-userspace"]))
            .and_then(|_| run(Command::new(workspace().join("target/release/hb")).args(&rest))),
        "test" => test(&rest),
        "demo" => setup().and_then(|_| demo::demo(&workspace(), &rest)),
        "bench" => bench::bench(&workspace(), &rest),
        "fuzz" => {
            let secs = rest.first().and_then(|s| s.parse().ok()).unwrap_or(60);
            bench::fuzz(&workspace(), secs)
        }
        _ => {
            eprintln!(
                "usage: cargo xtask <setup|build-ebpf|lint-ebpf|run -- ARGS|test|demo|bench|fuzz [SECS]>"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask {cmd}: {e}");
            ExitCode::FAILURE
        }
    }
}
