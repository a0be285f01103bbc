//! Builds the XDP object and places it in `$OUT_DIR/hb-ebpf.o`, where
//! `src/xdp/loader.rs` embeds it with `include_bytes_aligned!`.
//!
//! `HB_EBPF_OBJECT=/path/to/object` skips the build and embeds that file.

include!("build_ebpf.rs");

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest.parent().unwrap().to_path_buf();
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap()).join("hb-ebpf.o");
    println!("cargo:rerun-if-env-changed=HB_EBPF_OBJECT");
    for p in [
        "hb-ebpf/src",
        "hb-ebpf/Cargo.toml",
        "hb-ebpf/Cargo.lock",
        "hb-ebpf/.cargo/config.toml",
        "hb-common/src",
        "hb-common/Cargo.toml",
    ] {
        println!("cargo:rerun-if-changed={}", workspace.join(p).display());
    }
    println!("cargo:rerun-if-changed=build_ebpf.rs");

    let obj = match std::env::var_os("HB_EBPF_OBJECT") {
        Some(p) => PathBuf::from(p),
        None => build_ebpf(&workspace).unwrap_or_else(|e| panic!("{e}")),
    };
    copy(&obj, &out);
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to)
        .unwrap_or_else(|e| panic!("copy {} -> {}: {e}", from.display(), to.display()));
}
