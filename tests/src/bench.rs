//! Building blocks of `cargo xtask bench` (tests/src/bin/hb-bench): a UDP
//! responder on every node that answers with the node's index, a prober in
//! the client namespace that asks the service address every millisecond and
//! records who answered, a keepalived runner for the baseline, and
//! percentile helpers.

use std::{
    fs,
    net::UdpSocket,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use crate::netns::{Child, Netns};

pub const ECHO_PORT: u16 = 7777;

/// `p`-th percentile (0..=100) of `v` (nearest rank), NaN if empty.
pub fn percentile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let rank = ((p / 100.0) * s.len() as f64).ceil().max(1.0) as usize;
    s[rank.min(s.len()) - 1]
}

/// Answers every datagram on ECHO_PORT with one byte: the node index.
pub struct Responder {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Responder {
    pub fn start(ns: &Netns, index: u8) -> Responder {
        let sock = ns.run(|| {
            let s = UdpSocket::bind(("0.0.0.0", ECHO_PORT)).expect("bind echo port");
            s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
            s
        });
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            while !st.load(Ordering::Relaxed) {
                if let Ok((_, from)) = sock.recv_from(&mut buf) {
                    let _ = sock.send_to(&[index], from);
                }
            }
        });
        Responder {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Sends a probe to `addr:ECHO_PORT` every millisecond from the client
/// namespace and records (time, answering node) for every reply.
pub struct Prober {
    stop: Arc<AtomicBool>,
    replies: Arc<Mutex<Vec<(Instant, u8)>>>,
    threads: Vec<JoinHandle<()>>,
}

impl Prober {
    pub fn start(client: &Netns, addr: &str) -> Prober {
        let sock = client.run(|| UdpSocket::bind("0.0.0.0:0").unwrap());
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let rx = sock.try_clone().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let replies = Arc::new(Mutex::new(Vec::new()));
        let target = format!("{addr}:{ECHO_PORT}");
        let st = stop.clone();
        let sender = std::thread::spawn(move || {
            let mut next = Instant::now();
            while !st.load(Ordering::Relaxed) {
                let _ = sock.send_to(b"?", &target);
                next += Duration::from_millis(1);
                if let Some(d) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(d);
                }
            }
        });
        let (st, rp) = (stop.clone(), replies.clone());
        let receiver = std::thread::spawn(move || {
            let mut buf = [0u8; 16];
            while !st.load(Ordering::Relaxed) {
                if let Ok(n) = rx.recv(&mut buf) {
                    if n >= 1 {
                        rp.lock().unwrap().push((Instant::now(), buf[0]));
                    }
                }
            }
        });
        Prober {
            stop,
            replies,
            threads: vec![sender, receiver],
        }
    }

    /// First reply from `node` at or after `since`.
    pub fn first_from(&self, node: u8, since: Instant) -> Option<Instant> {
        self.replies
            .lock()
            .unwrap()
            .iter()
            .find(|(t, n)| *t >= since && *n == node)
            .map(|(t, _)| *t)
    }

    /// Whether every reply in the last `window` came from `node` (and
    /// there were some).
    pub fn steady_on(&self, node: u8, window: Duration) -> bool {
        let r = self.replies.lock().unwrap();
        let from = Instant::now() - window;
        let recent: Vec<u8> = r
            .iter()
            .filter(|(t, _)| *t >= from)
            .map(|(_, n)| *n)
            .collect();
        recent.len() as f64 > window.as_millis() as f64 * 0.5 && recent.iter().all(|n| *n == node)
    }

    pub fn clear(&self) {
        self.replies.lock().unwrap().clear();
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// keepalived (Debian's package) for node `i` of a two-node VRRP pair.
pub struct Keepalived {
    pub child: Option<Child>,
    pub conf: PathBuf,
    pub log: PathBuf,
    dir: PathBuf,
}

impl Keepalived {
    /// Writes the config: VRRPv3, `advert` interval, node0 priority 150,
    /// node1 100, the VIP on eth0 (preempting, like `auto_failback on`).
    pub fn configure(
        dir: &Path,
        i: usize,
        vip: &str,
        advert: Duration,
        extra_global: &str,
    ) -> Keepalived {
        fs::create_dir_all(dir).unwrap();
        let conf = dir.join(format!("keepalived{i}.conf"));
        fs::write(
            &conf,
            format!(
                "global_defs {{\n    router_id node{i}\n    vrrp_version 3\n{extra_global}}}\nvrrp_instance VI_1 {{\n    state BACKUP\n    interface eth0\n    virtual_router_id 51\n    priority {}\n    advert_int {:.2}\n    virtual_ipaddress {{\n        {vip}/24 dev eth0\n    }}\n}}\n",
                150 - 50 * i,
                advert.as_secs_f64()
            ),
        )
        .unwrap();
        Keepalived {
            child: None,
            log: dir.join(format!("keepalived{i}.log")),
            conf,
            dir: dir.to_path_buf(),
        }
    }

    pub fn start(&mut self, ns: &Netns, i: usize, taskset: Option<&str>) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut cmd = match taskset {
            Some(cpus) => {
                let mut c = Command::new("taskset");
                c.args(["-c", cpus, "ip", "netns", "exec", &ns.name, "keepalived"]);
                c
            }
            None => ns.command("keepalived"),
        };
        // Own process group: `kill` takes parent and VRRP child together.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        cmd.args(["-n", "-l", "-D", "-P", "-f"])
            .arg(&self.conf)
            .arg("-p")
            .arg(self.dir.join(format!("k{i}.pid")))
            .arg("-r")
            .arg(self.dir.join(format!("k{i}.vrrp.pid")))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        self.child = Some(Child {
            child: cmd.spawn().expect("start keepalived"),
        });
    }

    /// SIGKILL of keepalived and its VRRP child at once (its process
    /// group, which we created), as in a crash: the VIP stays configured.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pgid = nix::unistd::Pid::from_raw(c.pid());
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
            let _ = c.child.wait();
            // Wait for the group to be gone before anyone restarts it.
            let t = Instant::now();
            while nix::sys::signal::killpg(pgid, None).is_ok()
                && t.elapsed() < Duration::from_secs(5)
            {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Keepalived {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let v: Vec<f64> = (1..=100).map(|x| x as f64).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&[3.0], 50.0), 3.0);
        assert!(percentile(&[], 50.0).is_nan());
    }
}
