//! The demo cluster (filled in once the daemon runs).
use std::path::Path;

pub fn demo(_ws: &Path, _args: &[String]) -> Result<(), String> {
    Err("the demo is not implemented yet".into())
}
