//! The command line as an operator meets it: `hb check`, startup errors on
//! stderr (FAQ q11/q12: a bad authkeys mode must not fail silently), and
//! client commands without a daemon.

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
};

use hb_tests::{cluster::hb_bin, netns::unique};

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn config(hacf: &str, hares: &str, authkeys_mode: u32) -> Dir {
    let d = std::env::temp_dir().join(unique("hbcli"));
    fs::create_dir_all(&d).unwrap();
    fs::write(d.join("ha.cf"), hacf).unwrap();
    fs::write(d.join("haresources"), hares).unwrap();
    fs::write(
        d.join("authkeys"),
        "auth 1\n1 sha256 0123456789abcdef0123\n",
    )
    .unwrap();
    fs::set_permissions(
        d.join("authkeys"),
        fs::Permissions::from_mode(authkeys_mode),
    )
    .unwrap();
    Dir(d)
}

fn hb(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(hb_bin())
        .arg("-c")
        .arg(dir)
        .args(["--node", "alpha"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const GOOD: &str = "keepalive 200ms\ndeadtime 2\nwarntime 1\ninitdead 10\nbcast eth0\nauto_failback on\nnode alpha beta\n";

#[test]
fn check_accepts_a_good_config_and_summarises_it() {
    let d = config(GOOD, "alpha 10.0.0.10/24/eth0\nbeta 10.0.0.11\n", 0o600);
    let (ok, out, err) = hb(&d.0, &["check"]);
    assert!(ok, "{err}");
    assert!(out.contains("configuration OK"), "{out}");
    assert!(out.contains("nodes: alpha, beta"));
    assert!(out.contains("group 1 (preferred beta): 10.0.0.11"));
    assert!(out.contains("authkeys: sending with key 1 (sha256)"));
}

#[test]
fn check_reports_every_error_with_file_and_line() {
    let d = config(
        "keepalive 2min\nbcast eth0\nnode alpha beta\nfrobnicate yes\n",
        "gamma 10.0.0.10\nalpha 10.0.0.10/40\n",
        0o600,
    );
    let (ok, _, err) = hb(&d.0, &["check"]);
    assert!(!ok);
    let p = d.0.display().to_string();
    for want in [
        format!("{p}/ha.cf:1: `keepalive`: `2min` is not a time"),
        format!("{p}/ha.cf:4: unknown directive `frobnicate`; valid directives are:"),
        format!("{p}/haresources:1: preferred node `gamma` is not a `node` in ha.cf"),
        format!("{p}/haresources:2: `40` in `10.0.0.10/40` is not a prefix length from 1 to 32"),
        "hb check: 4 error(s)".to_string(),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
}

#[test]
fn run_refuses_group_readable_authkeys_loudly_on_stderr() {
    // FAQ q11/q12: "Heartbeat failure [rc=1]" with nothing in the logs.
    let d = config(GOOD, "alpha 10.0.0.10/24/eth0\n", 0o644);
    let (ok, _, err) = hb(&d.0, &["run"]);
    assert!(!ok);
    let p = d.0.join("authkeys").display().to_string();
    assert!(
        err.contains(&format!("{p}: is readable by group or others (mode 644)")),
        "{err}"
    );
    assert!(err.contains(&format!("chmod 600 {p}")), "{err}");
    assert!(
        err.contains("hb will not start until the configuration is fixed"),
        "{err}"
    );
    // `hb check` says the same.
    let (ok, _, err2) = hb(&d.0, &["check"]);
    assert!(!ok && err2.contains("is readable by group or others"));
}

#[test]
fn warnings_do_not_fail_check() {
    let d = config(
        &format!("{GOOD}nice_failback on\nhopfudge 1\n"),
        "alpha 10.0.0.10\n",
        0o600,
    );
    let fixed = fs::read_to_string(d.0.join("authkeys"))
        .unwrap()
        .replace("sha256 0123456789abcdef0123", "crc");
    fs::write(d.0.join("authkeys"), fixed).unwrap();
    let (ok, _, err) = hb(&d.0, &["check"]);
    assert!(ok, "{err}");
    assert!(
        err.contains("warning:") && err.contains("`nice_failback` is obsolete"),
        "{err}"
    );
    assert!(err.contains("`hopfudge` is ignored"), "{err}");
    assert!(err.contains("this is NOT authentication"), "{err}");
}

#[test]
fn client_commands_explain_a_missing_daemon() {
    let d = config(
        &format!("{GOOD}control_socket /tmp/hb-no-such-dir/hb.sock\n"),
        "alpha 10.0.0.10\n",
        0o600,
    );
    let (ok, _, err) = hb(&d.0, &["status"]);
    assert!(!ok);
    assert!(
        err.contains("cannot reach the hb daemon at /tmp/hb-no-such-dir/hb.sock"),
        "{err}"
    );
    assert!(err.contains("is `hb run` running?"), "{err}");
}

#[test]
fn bad_arguments_are_rejected_by_clap() {
    let out = Command::new(hb_bin())
        .args(["cleanup", "notanumber"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value 'notanumber'"));
}
