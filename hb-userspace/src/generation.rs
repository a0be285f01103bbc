//! The generation number: bumped at every daemon start and sent in every
//! heartbeat, so peers detect restarts and refuse replays of a previous
//! life (Heartbeat's hb_generation).
//!
//! `hbgenmethod file` (default): `max(stored + 1, unix seconds)`, written and
//! fsynced before the first heartbeat. Taking the maximum with the clock
//! means a wiped state directory still yields a generation peers accept;
//! the stored value protects against a clock that went backwards.
//! `hbgenmethod time`: unix microseconds, nothing stored.

use std::{
    fs::{self, File},
    io::Write,
    path::Path,
};

use crate::config::GenMethod;

#[derive(Debug, thiserror::Error)]
pub enum GenerationError {
    #[error("state directory {dir}: {err}")]
    Dir { dir: String, err: std::io::Error },
    #[error("generation file {path}: {err}")]
    File { path: String, err: std::io::Error },
    #[error("generation file {path} is corrupt (`{content}`); delete it to start over")]
    Corrupt { path: String, content: String },
}

pub fn next(method: GenMethod, state_dir: &Path) -> Result<u64, GenerationError> {
    let now = crate::time::realtime_ns();
    if method == GenMethod::Time {
        return Ok(now / 1000);
    }
    fs::create_dir_all(state_dir).map_err(|err| GenerationError::Dir {
        dir: state_dir.display().to_string(),
        err,
    })?;
    let path = state_dir.join("generation");
    let ps = path.display().to_string();
    let stored = match fs::read_to_string(&path) {
        Ok(s) => Some(
            s.trim()
                .parse::<u64>()
                .map_err(|_| GenerationError::Corrupt {
                    path: ps.clone(),
                    content: s.trim().chars().take(40).collect(),
                })?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => return Err(GenerationError::File { path: ps, err }),
    };
    let gen = stored
        .map_or(0, |s| s.saturating_add(1))
        .max(now / 1_000_000_000);
    let tmp = state_dir.join("generation.tmp");
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        writeln!(f, "{gen}")?;
        f.sync_all()?;
        fs::rename(&tmp, &path)?;
        File::open(state_dir)?.sync_all()
    };
    write().map_err(|err| GenerationError::File { path: ps, err })?;
    Ok(gen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strictly_increasing_and_survives_bad_clock() {
        let dir = std::env::temp_dir().join(format!("hb-gen-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let a = next(GenMethod::File, &dir).unwrap();
        let b = next(GenMethod::File, &dir).unwrap();
        assert!(b > a);
        // A stored value from the future (clock went backwards) still grows.
        fs::write(dir.join("generation"), format!("{}\n", u64::MAX / 2)).unwrap();
        assert_eq!(next(GenMethod::File, &dir).unwrap(), u64::MAX / 2 + 1);
        fs::write(dir.join("generation"), "garbage").unwrap();
        let e = next(GenMethod::File, &dir).unwrap_err().to_string();
        assert!(e.contains("is corrupt (`garbage`); delete it"), "{e}");
        fs::remove_dir_all(&dir).unwrap();
        assert!(next(GenMethod::Time, &dir).unwrap() > a);
    }
}
