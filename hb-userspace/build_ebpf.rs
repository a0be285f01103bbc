// Builds the `hb-ebpf` XDP object. Shared, via `include!`, by
// `hb-userspace/build.rs` (which embeds the object in the `hb` binary) and by
// `cargo xtask build-ebpf`, so there is exactly one recipe.
//
// Recipe (see ../shared/docs/ebpf-toolchain.md): nightly cargo with
// `-Z build-std=core` for `bpfel-unknown-none`, linked by bpf-linker 0.10.4.
// Both come from `cargo xtask setup`.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// Where the eBPF crate builds (separate from the host target dir so a nested
/// cargo never waits on the outer cargo's lock).
pub fn ebpf_target_dir(workspace: &Path) -> PathBuf {
    workspace.join("target").join("ebpf")
}

/// Builds `hb-ebpf` in release mode and returns the path of the object.
pub fn build_ebpf(workspace: &Path) -> Result<PathBuf, String> {
    let crate_dir = workspace.join("hb-ebpf");
    let target_dir = ebpf_target_dir(workspace);
    let mut cmd = Command::new("rustup");
    cmd.args(["run", "nightly", "cargo", "build", "--release", "--target-dir"])
        .arg(&target_dir)
        // hb-ebpf/.cargo/config.toml (target, build-std) is found from the cwd.
        .current_dir(&crate_dir);
    // Do not leak the outer cargo's compiler settings into the nested build.
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        let keep = k == "CARGO_HOME" || k == "RUSTUP_HOME";
        if !keep && (k.starts_with("CARGO") || k.starts_with("RUST")) {
            cmd.env_remove(k.as_ref());
        }
    }
    let status = cmd.status().map_err(|e| {
        format!("cannot run `rustup run nightly cargo` ({e}); run `cargo xtask setup` first")
    })?;
    if !status.success() {
        return Err(format!(
            "building hb-ebpf failed ({status}). If bpf-linker or rust-src is missing, run \
             `cargo xtask setup` (installs rust-src for nightly and bpf-linker 0.10.4)"
        ));
    }
    let obj = target_dir.join("bpfel-unknown-none/release/hb-ebpf");
    if !obj.is_file() {
        return Err(format!("hb-ebpf built but {} is missing", obj.display()));
    }
    Ok(obj)
}
