//! `authkeys` parser and permission check (Heartbeat FAQ q11).
//!
//! ```text
//! auth 1
//! 1 sha256 SomeLongSecret
//! 2 sha1 PreviousSecret      # still accepted: rolling key changes
//! ```
//! `auth N` selects the key used to *send*; every listed key is accepted on
//! receive. Methods: `sha256` (hb, recommended), `sha1` and `md5` (Heartbeat
//! compatible HMACs), `crc` (no key, no security: accepted with a loud
//! warning). The file must not be readable by group or other.

use std::{os::unix::fs::MetadataExt, path::Path};

use hb_common::AuthAlg;

use super::{lex, ConfigError, ConfigErrors};

#[derive(Clone, PartialEq, Eq)]
pub struct AuthKey {
    pub index: u8,
    pub alg: AuthAlg,
    pub key: Vec<u8>,
}

impl std::fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets.
        write!(
            f,
            "AuthKey({} {} <{} bytes>)",
            self.index,
            self.alg.name(),
            self.key.len()
        )
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthKeys {
    /// Index of the key used to send.
    pub send: u8,
    pub keys: Vec<AuthKey>,
    pub warnings: Vec<ConfigError>,
}

impl AuthKeys {
    pub fn get(&self, index: u8) -> Option<&AuthKey> {
        self.keys.iter().find(|k| k.index == index)
    }

    pub fn send_key(&self) -> &AuthKey {
        self.get(self.send).expect("validated: send key exists")
    }
}

/// Reads, checks permissions of, and parses an authkeys file.
pub fn load(path: &Path) -> Result<AuthKeys, ConfigErrors> {
    let mut errs = ConfigErrors::default();
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            errs.push(
                path,
                0,
                format!(
                    "cannot read: {e} (create it with mode 600: `auth 1` and `1 sha256 <secret>`)"
                ),
            );
            return Err(errs);
        }
    };
    check_mode(path, meta.mode(), &mut errs);
    if !errs.is_empty() {
        return Err(errs);
    }
    let content = match std::fs::read_to_string(path) {
        Ok(c) => c,
        Err(e) => {
            errs.push(path, 0, format!("cannot read: {e}"));
            return Err(errs);
        }
    };
    parse(path, &content)
}

/// Heartbeat refuses an authkeys file readable by group or other.
pub fn check_mode(path: &Path, mode: u32, errs: &mut ConfigErrors) {
    if mode & 0o044 != 0 {
        errs.push(path, 0, format!(
            "is readable by group or others (mode {:03o}): the keys authenticate every heartbeat. Fix: chmod 600 {}",
            mode & 0o777,
            path.display()
        ));
    }
}

/// Parses authkeys content (no permission check).
pub fn parse(path: &Path, content: &str) -> Result<AuthKeys, ConfigErrors> {
    let mut errs = ConfigErrors::default();
    let mut send: Option<(u8, usize)> = None;
    let mut keys: Vec<(AuthKey, usize)> = Vec::new();
    let mut warnings = Vec::new();
    for l in lex::lines(content, false) {
        let t: Vec<&str> = l.text.split_whitespace().collect();
        let index = |s: &str| s.parse::<u8>().ok().filter(|i| *i <= 15);
        if t[0] == "auth" {
            if send.is_some() {
                errs.push(
                    path,
                    l.number,
                    "more than one `auth` line; keep exactly one `auth N`",
                );
                continue;
            }
            match (t.len(), t.get(1).and_then(|s| index(s))) {
                (2, Some(i)) => send = Some((i, l.number)),
                _ => errs.push(
                    path,
                    l.number,
                    "`auth` takes one key index from 0 to 15, e.g. `auth 1`",
                ),
            }
            continue;
        }
        let Some(i) = index(t[0]) else {
            errs.push(
                path,
                l.number,
                format!(
                    "`{}`: expected `auth N` or `N method [key]` with N from 0 to 15",
                    t[0]
                ),
            );
            continue;
        };
        let Some(method) = t.get(1) else {
            errs.push(
                path,
                l.number,
                format!("key {i} has no method: `{i} sha256 <secret>`"),
            );
            continue;
        };
        let alg = match method.to_ascii_lowercase().as_str() {
            "sha256" => AuthAlg::Sha256,
            "sha1" => AuthAlg::Sha1,
            "md5" => AuthAlg::Md5,
            "crc" => AuthAlg::Crc32,
            m => {
                errs.push(
                    path,
                    l.number,
                    format!("unknown method `{m}`: valid methods are sha256, sha1, md5, crc"),
                );
                continue;
            }
        };
        let key = match (alg, t.len()) {
            (AuthAlg::Crc32, 2) => Vec::new(),
            (AuthAlg::Crc32, _) => {
                errs.push(path, l.number, "`crc` takes no key");
                continue;
            }
            (_, 3) => t[2].as_bytes().to_vec(),
            (_, 2) => {
                errs.push(
                    path,
                    l.number,
                    format!("`{method}` needs a key: `{i} {method} <secret>`"),
                );
                continue;
            }
            _ => {
                errs.push(path, l.number, "the key must be a single word (no spaces)");
                continue;
            }
        };
        if let Some((_, first)) = keys.iter().find(|(k, _)| k.index == i) {
            errs.push(
                path,
                l.number,
                format!("key {i} is defined twice (first on line {first})"),
            );
            continue;
        }
        match alg {
            AuthAlg::Crc32 => warnings.push(ConfigError {
                file: path.to_path_buf(),
                line: l.number,
                msg: "key uses `crc`: this is NOT authentication; anyone on the network can forge heartbeats and take over resources. Use sha256".into(),
            }),
            AuthAlg::Md5 => warnings.push(ConfigError {
                file: path.to_path_buf(),
                line: l.number,
                msg: "key uses `md5` (HMAC-MD5, kept for compatibility); prefer sha256".into(),
            }),
            _ if key.len() < 8 => warnings.push(ConfigError {
                file: path.to_path_buf(),
                line: l.number,
                msg: format!("key {i} is only {} bytes long; use at least 16 random characters", key.len()),
            }),
            _ => {}
        }
        keys.push((AuthKey { index: i, alg, key }, l.number));
    }
    match send {
        None => errs.push(path, 0, "no `auth N` line selecting the key to send with"),
        Some((i, line)) if !keys.iter().any(|(k, _)| k.index == i) => errs.push(
            path,
            line,
            format!("`auth {i}` selects key {i}, which is not defined"),
        ),
        _ => {}
    }
    errs.into_result(AuthKeys {
        send: send.map(|s| s.0).unwrap_or(0),
        keys: keys.into_iter().map(|(k, _)| k).collect(),
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn parses_rotation_and_methods() {
        let a = parse(
            Path::new("authkeys"),
            "auth 2\n1 sha1 oldsecretvalue\n2 sha256 newsecretvalue # now\n3 md5 md5secretvalue\n",
        )
        .unwrap();
        assert_eq!(a.send, 2);
        assert_eq!(a.keys.len(), 3);
        assert_eq!(a.send_key().alg, AuthAlg::Sha256);
        assert_eq!(a.get(1).unwrap().key, b"oldsecretvalue");
        assert_eq!(a.warnings.len(), 1, "md5 warns");
        assert!(
            !format!("{:?}", a.keys).contains("secret"),
            "Debug never prints keys"
        );
    }

    #[test]
    fn crc_warns_loudly() {
        let a = parse(Path::new("authkeys"), "auth 3\n3 crc\n").unwrap();
        assert_eq!(a.send_key().alg, AuthAlg::Crc32);
        assert!(a.warnings[0]
            .to_string()
            .contains("authkeys:2: key uses `crc`: this is NOT authentication"));
    }

    #[test]
    fn errors_table() {
        let cases: &[(&str, &str)] = &[
            ("1 sha1 k\n", "authkeys: no `auth N` line"),
            (
                "auth 2\n1 sha1 k\n",
                "authkeys:1: `auth 2` selects key 2, which is not defined",
            ),
            (
                "auth 16\n",
                "authkeys:1: `auth` takes one key index from 0 to 15",
            ),
            (
                "auth 1\nauth 1\n1 sha1 k\n",
                "authkeys:2: more than one `auth` line",
            ),
            (
                "auth 1\n1 sha512 k\n",
                "authkeys:2: unknown method `sha512`",
            ),
            ("auth 1\n1 sha1\n", "authkeys:2: `sha1` needs a key"),
            ("auth 1\n1 crc k\n", "authkeys:2: `crc` takes no key"),
            (
                "auth 1\n1 sha1 two words\n",
                "authkeys:2: the key must be a single word",
            ),
            (
                "auth 1\n1 sha1 a\n1 md5 b\n",
                "authkeys:3: key 1 is defined twice (first on line 2)",
            ),
            (
                "auth 1\nx sha1 a\n",
                "authkeys:2: `x`: expected `auth N` or `N method [key]`",
            ),
        ];
        for (src, want) in cases {
            let e = parse(Path::new("authkeys"), src).unwrap_err().to_string();
            assert!(e.contains(want), "{src:?}\n got: {e}\nwant: {want}");
        }
    }

    #[test]
    fn permissions_faq_q11() {
        let dir = std::env::temp_dir().join(format!("hb-ak-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("authkeys");
        std::fs::write(&p, "auth 1\n1 sha256 0123456789abcdef\n").unwrap();
        for (mode, ok) in [
            (0o600, true),
            (0o400, true),
            (0o700, true),
            (0o640, false),
            (0o604, false),
            (0o644, false),
        ] {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            let r = load(&p);
            assert_eq!(r.is_ok(), ok, "mode {mode:o}: {r:?}");
            if !ok {
                let e = r.unwrap_err().to_string();
                assert!(
                    e.contains(&format!("is readable by group or others (mode {mode:03o})")),
                    "{e}"
                );
                assert!(e.contains("chmod 600"), "{e}");
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
