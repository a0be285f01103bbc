//! The daemon's logger (a `log::Log`): every record goes to stderr (with
//! `<N>` priority prefixes when stderr is the systemd journal, so levels
//! survive), to the `logfile` / `debugfile` of ha.cf when set, and to syslog
//! (`/dev/log`) under `logfacility`. aya-log records from the XDP program
//! arrive through the same path.

use std::{
    fs::{File, OpenOptions},
    io::Write,
    os::unix::net::UnixDatagram,
    path::Path,
    sync::Mutex,
};

use log::{Level, LevelFilter, Log, Metadata, Record};

pub struct Logger {
    level: LevelFilter,
    journal: bool,
    logfile: Option<Mutex<File>>,
    debugfile: Option<Mutex<File>>,
    syslog: Option<(UnixDatagram, u8)>,
}

fn facility_code(name: &str) -> Option<u8> {
    Some(match name {
        "kern" => 0,
        "user" => 1,
        "mail" => 2,
        "daemon" => 3,
        "auth" => 4,
        "syslog" => 5,
        "lpr" => 6,
        "news" => 7,
        "uucp" => 8,
        "cron" => 9,
        "authpriv" => 10,
        "local0" => 16,
        "local1" => 17,
        "local2" => 18,
        "local3" => 19,
        "local4" => 20,
        "local5" => 21,
        "local6" => 22,
        "local7" => 23,
        _ => return None,
    })
}

fn severity(l: Level) -> u8 {
    match l {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

fn timestamp() -> String {
    let ns = crate::time::realtime_ns();
    let secs = (ns / 1_000_000_000) as libc::time_t;
    // SAFETY: zeroed tm is valid; localtime_r fills it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    unsafe { libc::localtime_r(&secs, &mut tm) };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        (ns / 1_000_000) % 1000
    )
}

fn open_append(p: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(p)
}

impl Logger {
    /// `debug` is ha.cf's debug level (0 = info, 1 = debug, 2+ = trace).
    pub fn new(
        debug: u8,
        logfile: Option<&Path>,
        debugfile: Option<&Path>,
        facility: Option<&str>,
    ) -> std::io::Result<Logger> {
        let level = match debug {
            0 => LevelFilter::Info,
            1 => LevelFilter::Debug,
            _ => LevelFilter::Trace,
        };
        let logfile = logfile.map(open_append).transpose()?.map(Mutex::new);
        let debugfile = debugfile.map(open_append).transpose()?.map(Mutex::new);
        let syslog = match facility.filter(|f| *f != "none").and_then(facility_code) {
            Some(code) => {
                let s = UnixDatagram::unbound()?;
                match s.connect("/dev/log") {
                    Ok(()) => Some((s, code)),
                    Err(_) => None, // no syslog daemon: stderr and files only
                }
            }
            None => None,
        };
        Ok(Logger {
            level,
            journal: std::env::var_os("JOURNAL_STREAM").is_some(),
            logfile,
            debugfile,
            syslog,
        })
    }

    /// Installs this logger as the global `log` backend.
    pub fn install(self) {
        let level = self.level;
        // Ignore "already set" (tests may install twice).
        if log::set_boxed_logger(Box::new(self)).is_ok() {
            log::set_max_level(level);
        }
    }
}

impl Log for Logger {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        m.level() <= self.level
    }

    fn log(&self, r: &Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let msg = format!("{}", r.args());
        let level = r.level();
        let target = if r.target().starts_with("hb_userspace") || r.target().starts_with("hb") {
            ""
        } else {
            r.target()
        };
        let line = if target.is_empty() {
            format!("{level}: {msg}")
        } else {
            format!("{level}: [{target}] {msg}")
        };
        let mut err = std::io::stderr().lock();
        if self.journal {
            let _ = writeln!(err, "<{}>{line}", severity(level));
        } else {
            let _ = writeln!(err, "{} hb[{}]: {line}", timestamp(), std::process::id());
        }
        let stamped = format!("{} hb[{}]: {line}\n", timestamp(), std::process::id());
        if level <= Level::Info {
            if let Some(f) = &self.logfile {
                let _ = f.lock().unwrap().write_all(stamped.as_bytes());
            }
        }
        if let Some(f) = &self.debugfile {
            let _ = f.lock().unwrap().write_all(stamped.as_bytes());
        }
        if let Some((s, fac)) = &self.syslog {
            let _ = s.send(
                format!(
                    "<{}>hb[{}]: {line}",
                    fac * 8 + severity(level),
                    std::process::id()
                )
                .as_bytes(),
            );
        }
    }

    fn flush(&self) {
        for f in [&self.logfile, &self.debugfile].into_iter().flatten() {
            let _ = f.lock().unwrap().flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facilities_and_severities() {
        assert_eq!(facility_code("local0"), Some(16));
        assert_eq!(facility_code("daemon"), Some(3));
        assert_eq!(facility_code("bogus"), None);
        assert_eq!(severity(Level::Warn), 4);
    }

    #[test]
    fn writes_logfile() {
        let p = std::env::temp_dir().join(format!("hb-log-{}", std::process::id()));
        let l = Logger::new(0, Some(&p), None, None).unwrap();
        l.log(
            &Record::builder()
                .level(Level::Warn)
                .args(format_args!("node x is dead"))
                .build(),
        );
        l.log(
            &Record::builder()
                .level(Level::Debug)
                .args(format_args!("hidden"))
                .build(),
        );
        l.flush();
        let s = std::fs::read_to_string(&p).unwrap();
        assert!(s.contains("WARN: node x is dead"), "{s}");
        assert!(!s.contains("hidden"));
        std::fs::remove_file(&p).unwrap();
    }
}
