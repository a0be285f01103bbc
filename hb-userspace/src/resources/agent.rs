//! Runs Heartbeat/LSB resource scripts and OCF resource agents, with
//! timeouts, and interprets what they say.
//!
//! Heartbeat scripts (`resource.d`, `init.d`) are called as
//! `script [args...] start|stop|status`. Start and stop succeed on exit 0.
//! `status` is judged by its *output*, as Heartbeat's ResourceManager does:
//! "not running" (any case) means stopped, "running" or "OK" means running;
//! when the output says neither, the LSB exit code decides (0 running,
//! 3 stopped), and anything else is reported as an error quoting the output.
//!
//! OCF agents get the OCF environment (OCF_ROOT, OCF_RESKEY_*, ...) and are
//! judged by exit code: monitor 0 = running, 7 = not running.
//!
//! A hung script is killed with its whole process group at the timeout.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use tokio::io::AsyncReadExt;

use super::manager::{OpKind, OpOutcome};

/// Output kept from a script (per stream).
const MAX_OUTPUT: usize = 16 * 1024;

/// What a script run produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunResult {
    /// Exit code; None when killed by a signal (including our timeout).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
    pub elapsed: Duration,
}

/// The kind of agent, which decides how results are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    Heartbeat,
    Ocf,
}

/// A prepared invocation.
#[derive(Clone, Debug)]
pub struct Invocation {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: HashMap<String, String>,
    pub timeout: Duration,
    /// For messages: `httpd`, `ocf:heartbeat:Dummy (Dummy_0_1)`.
    pub name: String,
}

/// OCF exit codes (OCF resource agent API).
pub fn ocf_code_name(code: i32) -> &'static str {
    match code {
        0 => "OCF_SUCCESS",
        1 => "OCF_ERR_GENERIC",
        2 => "OCF_ERR_ARGS",
        3 => "OCF_ERR_UNIMPLEMENTED",
        4 => "OCF_ERR_PERM",
        5 => "OCF_ERR_INSTALLED",
        6 => "OCF_ERR_CONFIGURED",
        7 => "OCF_NOT_RUNNING",
        8 => "OCF_RUNNING_MASTER",
        9 => "OCF_FAILED_MASTER",
        _ => "unknown code",
    }
}

/// The action verb passed to the script for `op`.
pub fn verb(flavor: Flavor, op: OpKind) -> &'static str {
    match (flavor, op) {
        (_, OpKind::Start) => "start",
        (_, OpKind::Stop) => "stop",
        (Flavor::Heartbeat, OpKind::Monitor) => "status",
        (Flavor::Ocf, OpKind::Monitor) => "monitor",
    }
}

fn snippet(s: &str) -> String {
    let t = s.trim();
    let mut out: String = t.chars().take(200).collect();
    if t.chars().count() > 200 {
        out.push_str("...");
    }
    out.replace('\n', " | ")
}

/// Heartbeat's status rule on the output text; None when it says neither.
pub fn status_text(stdout: &str) -> Option<bool> {
    let lower = stdout.to_ascii_lowercase();
    // "*[Nn][Oo][Tt]\ *[Rr]unning*": "not running", "not  running", "notrunning".
    let mut rest = lower.as_str();
    while let Some(p) = rest.find("not") {
        let after = rest[p + 3..].trim_start_matches(' ');
        if after.starts_with("running") {
            return Some(false);
        }
        rest = &rest[p + 3..];
    }
    if lower.contains("running") || stdout.contains("OK") {
        return Some(true);
    }
    None
}

/// Turns a run into an operation outcome (pure; fuzzed).
pub fn interpret(name: &str, flavor: Flavor, op: OpKind, r: &RunResult) -> OpOutcome {
    let v = verb(flavor, op);
    if r.timed_out {
        return OpOutcome::Failed(format!(
            "`{name} {v}` timed out after {:?} and was killed",
            r.elapsed
        ));
    }
    let Some(code) = r.code else {
        return OpOutcome::Failed(format!("`{name} {v}` was killed by a signal"));
    };
    let detail = || {
        let mut d = String::new();
        if !r.stderr.trim().is_empty() {
            d = format!("; stderr: {}", snippet(&r.stderr));
        } else if !r.stdout.trim().is_empty() {
            d = format!("; stdout: {}", snippet(&r.stdout));
        }
        d
    };
    match (flavor, op) {
        (Flavor::Heartbeat, OpKind::Monitor) => match (status_text(&r.stdout), code) {
            (Some(true), _) => OpOutcome::Success,
            (Some(false), _) => OpOutcome::NotRunning,
            (None, 0) => OpOutcome::Success,
            (None, 3) => OpOutcome::NotRunning,
            (None, c) => OpOutcome::Failed(format!(
                "`{name} status` said neither 'running' nor 'not running' and exited {c} (stdout: \"{}\")",
                snippet(&r.stdout)
            )),
        },
        (Flavor::Ocf, OpKind::Monitor) => match code {
            0 => OpOutcome::Success,
            7 => OpOutcome::NotRunning,
            c => OpOutcome::Failed(format!("`{name} monitor` exited {c} ({}){}", ocf_code_name(c), detail())),
        },
        (_, _) => match code {
            0 => OpOutcome::Success,
            c => {
                let meaning = if flavor == Flavor::Ocf { format!(" ({})", ocf_code_name(c)) } else { String::new() };
                OpOutcome::Failed(format!("`{name} {v}` exited {c}{meaning}{}", detail()))
            }
        },
    }
}

async fn read_capped(mut r: impl tokio::io::AsyncRead + Unpin) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if buf.len() < MAX_OUTPUT {
                    let take = n.min(MAX_OUTPUT - buf.len());
                    buf.extend_from_slice(&chunk[..take]);
                }
            }
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// Runs an invocation with `verb` appended as the last argument. The script
/// runs in its own process group, which is killed (SIGKILL) on timeout.
pub async fn run(inv: &Invocation, verb: &str) -> std::io::Result<RunResult> {
    let start = Instant::now();
    let mut cmd = tokio::process::Command::new(&inv.program);
    cmd.args(&inv.args)
        .arg(verb)
        .envs(&inv.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd.spawn()?;
    let pid = child.id();
    let out = read_capped(child.stdout.take().expect("piped"));
    let err = read_capped(child.stderr.take().expect("piped"));
    let collect = async {
        let (o, e, status) = tokio::join!(out, err, child.wait());
        (o, e, status)
    };
    match tokio::time::timeout(inv.timeout, collect).await {
        Ok((stdout, stderr, status)) => {
            let status = status?;
            Ok(RunResult {
                code: status.code(),
                stdout,
                stderr,
                timed_out: false,
                elapsed: start.elapsed(),
            })
        }
        Err(_) => {
            if let Some(pid) = pid {
                // The whole group: a hung script's children die with it.
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            Ok(RunResult {
                code: None,
                stdout: String::new(),
                stderr: String::new(),
                timed_out: true,
                elapsed: start.elapsed(),
            })
        }
    }
}

/// Environment common to every script (Heartbeat's HA_* variables).
pub fn heartbeat_env(node: &str, config_dir: &Path, rsctmp: &Path) -> HashMap<String, String> {
    let mut env = HashMap::new();
    env.insert("HA_CURHOST".into(), node.to_string());
    env.insert("HA_DIR".into(), config_dir.display().to_string());
    env.insert("HA_RSCTMP".into(), rsctmp.display().to_string());
    env.insert(
        "PATH".into(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into()),
    );
    env
}

/// The OCF environment for one agent and operation.
pub fn ocf_env(
    base: &HashMap<String, String>,
    ocf_root: &Path,
    spec: &crate::config::OcfSpec,
    timeout: Duration,
    interval: Duration,
) -> HashMap<String, String> {
    let mut env = base.clone();
    env.insert("OCF_ROOT".into(), ocf_root.display().to_string());
    env.insert("OCF_RA_VERSION_MAJOR".into(), "1".into());
    env.insert("OCF_RA_VERSION_MINOR".into(), "0".into());
    env.insert("OCF_RESOURCE_INSTANCE".into(), spec.instance.clone());
    env.insert("OCF_RESOURCE_TYPE".into(), spec.agent.clone());
    env.insert("OCF_RESOURCE_PROVIDER".into(), spec.provider.clone());
    env.insert("OCF_CHECK_LEVEL".into(), "0".into());
    env.insert(
        "OCF_RESKEY_CRM_meta_timeout".into(),
        timeout.as_millis().to_string(),
    );
    env.insert(
        "OCF_RESKEY_CRM_meta_interval".into(),
        interval.as_millis().to_string(),
    );
    for (k, v) in &spec.params {
        env.insert(format!("OCF_RESKEY_{k}"), v.clone());
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(code: i32, stdout: &str) -> RunResult {
        RunResult {
            code: Some(code),
            stdout: stdout.into(),
            stderr: String::new(),
            timed_out: false,
            elapsed: Duration::ZERO,
        }
    }

    #[test]
    fn heartbeat_status_text_table() {
        let cases: &[(&str, i32, OpOutcome)] = &[
            ("httpd is running", 0, OpOutcome::Success),
            ("httpd (pid 42) is running...", 3, OpOutcome::Success),
            ("httpd is not running", 0, OpOutcome::NotRunning),
            ("Not  Running", 0, OpOutcome::NotRunning),
            ("INFO: IPaddr Running OK", 0, OpOutcome::Success),
            ("status: OK", 1, OpOutcome::Success),
            ("", 0, OpOutcome::Success),
            ("", 3, OpOutcome::NotRunning),
            ("notable: running", 0, OpOutcome::Success),
        ];
        for (out, code, want) in cases {
            assert_eq!(
                &interpret(
                    "httpd",
                    Flavor::Heartbeat,
                    OpKind::Monitor,
                    &res(*code, out)
                ),
                want,
                "{out:?} {code}"
            );
        }
        match interpret("httpd", Flavor::Heartbeat, OpKind::Monitor, &res(4, "weird\noutput")) {
            OpOutcome::Failed(m) => assert_eq!(
                m,
                "`httpd status` said neither 'running' nor 'not running' and exited 4 (stdout: \"weird | output\")"
            ),
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn ocf_codes_table() {
        let cases: &[(OpKind, i32, Result<OpOutcome, &str>)] = &[
            (OpKind::Monitor, 0, Ok(OpOutcome::Success)),
            (OpKind::Monitor, 7, Ok(OpOutcome::NotRunning)),
            (
                OpKind::Monitor,
                1,
                Err("`Dummy monitor` exited 1 (OCF_ERR_GENERIC)"),
            ),
            (OpKind::Start, 0, Ok(OpOutcome::Success)),
            (
                OpKind::Start,
                5,
                Err("`Dummy start` exited 5 (OCF_ERR_INSTALLED)"),
            ),
            (OpKind::Stop, 0, Ok(OpOutcome::Success)),
            (
                OpKind::Stop,
                6,
                Err("`Dummy stop` exited 6 (OCF_ERR_CONFIGURED)"),
            ),
        ];
        for (op, code, want) in cases {
            let got = interpret("Dummy", Flavor::Ocf, *op, &res(*code, ""));
            match want {
                Ok(o) => assert_eq!(&got, o),
                Err(prefix) => assert!(
                    matches!(&got, OpOutcome::Failed(m) if m.starts_with(prefix)),
                    "{got:?}"
                ),
            }
        }
        let killed = RunResult {
            code: None,
            timed_out: true,
            elapsed: Duration::from_secs(2),
            ..res(0, "")
        };
        assert!(
            matches!(interpret("x", Flavor::Ocf, OpKind::Stop, &killed), OpOutcome::Failed(m) if m.contains("timed out after 2s"))
        );
    }

    #[tokio::test]
    async fn runs_scripts_and_kills_hung_ones() {
        let dir = std::env::temp_dir().join(format!("hb-agent-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("svc");
        std::fs::write(&script, "#!/bin/sh\ncase \"$2\" in\n start) echo started $1 $HA_CURHOST; exit 0;;\n status) echo \"svc is not running\"; exit 3;;\n stop) sleep 30 & sleep 30;;\nesac\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let inv = Invocation {
            program: script.clone(),
            args: vec!["arg1".into()],
            env: heartbeat_env("alpha", &dir, &dir),
            timeout: Duration::from_millis(300),
            name: "svc".into(),
        };
        let r = run(&inv, "start").await.unwrap();
        assert_eq!((r.code, r.stdout.trim()), (Some(0), "started arg1 alpha"));
        let r = run(&inv, "status").await.unwrap();
        assert_eq!(
            interpret("svc", Flavor::Heartbeat, OpKind::Monitor, &r),
            OpOutcome::NotRunning
        );
        let t = Instant::now();
        let r = run(&inv, "stop").await.unwrap();
        assert!(r.timed_out);
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "killed at the timeout, not after 30 s"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
