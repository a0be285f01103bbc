//! Benchmarks and fuzzing (filled in with issue 4).
use std::path::Path;

pub fn bench(_ws: &Path, _args: &[String]) -> Result<(), String> {
    Err("benchmarks are not implemented yet".into())
}

pub fn fuzz(_ws: &Path, _secs: u64) -> Result<(), String> {
    Ok(())
}
