//! Interpretation of resource script / OCF agent results: any output and
//! exit code gives an outcome (and a message) without panicking.
#![no_main]
use std::time::Duration;

use hb_userspace::resources::{
    agent::{interpret, status_text, Flavor, RunResult},
    manager::{OpKind, OpOutcome},
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let code = match data[0] {
        255 => None,
        c => Some(c as i32 - 10),
    };
    let flavor = if data[1] & 1 == 0 { Flavor::Heartbeat } else { Flavor::Ocf };
    let op = [OpKind::Start, OpKind::Stop, OpKind::Monitor][(data[2] % 3) as usize];
    let rest = &data[3..];
    let (out, err) = rest.split_at(rest.len() / 2);
    let text = String::from_utf8_lossy(rest).into_owned();
    let r = RunResult {
        code,
        stdout: String::from_utf8_lossy(out).into_owned(),
        stderr: String::from_utf8_lossy(err).into_owned(),
        timed_out: data[1] & 2 != 0,
        elapsed: Duration::from_millis(data[2] as u64),
    };
    let o = interpret("res", flavor, op, &r);
    if let OpOutcome::Failed(m) = &o {
        assert!(!m.is_empty());
    }
    let _ = status_text(&text);
});
