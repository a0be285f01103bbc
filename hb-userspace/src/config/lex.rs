//! Line lexing shared by the three Heartbeat config files, and the error
//! type that names file, line and what is wrong.
//!
//! Rules (Heartbeat's parse_config / ResourceManager): `#` starts a comment
//! anywhere on a line, CR is stripped, blank lines are skipped, a trailing
//! `\` continues a logical line (haresources), tokens are separated by
//! whitespace or commas (ha.cf option lists).

use std::{fmt, path::PathBuf, time::Duration};

/// One problem in one file, at one line (0 = the file as a whole).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub msg: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.msg)
        } else {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.msg)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found while loading a configuration (reported together so
/// one `hb check` run shows all of them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl ConfigErrors {
    pub fn push(&mut self, file: &std::path::Path, line: usize, msg: impl Into<String>) {
        self.0.push(ConfigError {
            file: file.to_path_buf(),
            line,
            msg: msg.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value of `r`, or None with its errors added to ours.
    pub fn absorb<T>(&mut self, r: Result<T, ConfigErrors>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.extend(e.0);
                None
            }
        }
    }

    pub fn into_result<T>(self, v: T) -> Result<T, ConfigErrors> {
        if self.0.is_empty() {
            Ok(v)
        } else {
            Err(self)
        }
    }
}

/// A logical line: its first physical line number and its text without
/// comments, trimmed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub number: usize,
    pub text: String,
}

/// Splits `content` into logical lines. With `continuation`, a line ending in
/// `\` is joined with the next one.
pub fn lines(content: &str, continuation: bool) -> Vec<Line> {
    let mut out = Vec::new();
    let mut pending: Option<Line> = None;
    for (i, raw) in content.split('\n').enumerate() {
        let raw = raw.trim_end_matches('\r');
        let text = match raw.find('#') {
            Some(p) => &raw[..p],
            None => raw,
        };
        let mut text = text.trim().to_string();
        let continues = continuation && text.ends_with('\\');
        if continues {
            text.pop();
            text = text.trim_end().to_string();
        }
        let line = match pending.take() {
            Some(mut p) => {
                p.text.push(' ');
                p.text.push_str(text.trim());
                p
            }
            None => Line {
                number: i + 1,
                text,
            },
        };
        if continues {
            pending = Some(line);
        } else if !line.text.trim().is_empty() {
            out.push(Line {
                number: line.number,
                text: line.text.trim().to_string(),
            });
        }
    }
    if let Some(p) = pending {
        if !p.text.trim().is_empty() {
            out.push(Line {
                number: p.number,
                text: p.text.trim().to_string(),
            });
        }
    }
    out
}

/// Whitespace/comma separated tokens (Heartbeat's DELIMS ", \t\n\r\f").
pub fn tokens(s: &str) -> Vec<&str> {
    s.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Heartbeat's boolean syntax: true/on/yes/y/1, false/off/no/n/0.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" | "y" | "1" => Some(true),
        "false" | "off" | "no" | "n" | "0" => Some(false),
        _ => None,
    }
}

/// Heartbeat's time syntax (cl_get_msec): a plain number is seconds
/// (fractions allowed, `0.5`), suffix `ms` is milliseconds, `us`/`usec`
/// microseconds; `s` is accepted too.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let lower = s.to_ascii_lowercase();
    let (num, scale) = if let Some(n) = lower.strip_suffix("usec") {
        (n, 1e-6)
    } else if let Some(n) = lower.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = lower.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = lower.strip_suffix('s') {
        (n, 1.0)
    } else {
        (lower.as_str(), 1.0)
    };
    let num = num.trim();
    let valid = !num.is_empty()
        && num.chars().all(|c| c.is_ascii_digit() || c == '.')
        && num.chars().filter(|c| *c == '.').count() <= 1
        && num != ".";
    if !valid {
        return Err(format!(
            "`{s}` is not a time: use seconds (`2`, `0.5`), milliseconds (`500ms`) or microseconds (`500us`)"
        ));
    }
    let v: f64 = num.parse().map_err(|_| format!("`{s}` is not a time"))?;
    let secs = v * scale;
    if !secs.is_finite() || secs > 1e9 {
        return Err(format!("`{s}` is too large"));
    }
    Ok(Duration::from_nanos((secs * 1e9).round() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_strip_comments_and_join_continuations() {
        let src = "a b # comment\r\n\n  # only comment\nc \\\n  d\\\ne\n\\\n";
        let got = lines(src, true);
        assert_eq!(
            got,
            vec![
                Line {
                    number: 1,
                    text: "a b".into()
                },
                Line {
                    number: 4,
                    text: "c d e".into()
                },
            ]
        );
        let no_cont = lines("x \\\ny", false);
        assert_eq!(no_cont.len(), 2);
        assert_eq!(no_cont[0].text, "x \\");
    }

    #[test]
    fn tokens_split_on_commas_and_space() {
        assert_eq!(tokens("node a, b\tc,,d"), vec!["node", "a", "b", "c", "d"]);
    }

    #[test]
    fn durations_table() {
        let ok: &[(&str, u64)] = &[
            ("2", 2_000_000_000),
            ("0.5", 500_000_000),
            ("500ms", 500_000_000),
            ("10MS", 10_000_000),
            ("250us", 250_000),
            ("250usec", 250_000),
            ("3s", 3_000_000_000),
            ("1.5ms", 1_500_000),
        ];
        for (s, ns) in ok {
            assert_eq!(parse_duration(s), Ok(Duration::from_nanos(*ns)), "{s}");
        }
        for bad in ["", "ms", "1..2", "-1", "1min", "abc", "1e3", ".", "1 ms x"] {
            assert!(parse_duration(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn booleans() {
        for t in ["on", "YES", "true", "y", "1"] {
            assert_eq!(parse_bool(t), Some(true));
        }
        for f in ["off", "No", "false", "n", "0"] {
            assert_eq!(parse_bool(f), Some(false));
        }
        assert_eq!(parse_bool("maybe"), None);
    }

    #[test]
    fn errors_name_file_and_line() {
        let mut e = ConfigErrors::default();
        e.push(std::path::Path::new("/etc/ha.d/ha.cf"), 7, "bad");
        e.push(std::path::Path::new("/etc/ha.d/authkeys"), 0, "mode");
        assert_eq!(
            e.to_string(),
            "/etc/ha.d/ha.cf:7: bad\n/etc/ha.d/authkeys: mode"
        );
    }
}
