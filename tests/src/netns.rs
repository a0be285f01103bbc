//! RAII network namespaces for integration tests.
//!
//! Every namespace and interface name is unique per process and test
//! (`hb<pid>x<n>`), so tests run in parallel and never touch the host's
//! interfaces. [`Netns`] deletes its namespace on drop, which also destroys
//! every interface in it and so every address hb configured there; [`Child`]
//! kills only the process it started, by pid.

use std::{
    fs::File,
    process::{Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A unique short token (fits interface names: 15 bytes max with suffixes).
pub fn unique(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{tag}{}x{n}", std::process::id() % 100_000)
}

/// Fails loudly (never skips) when not root: these tests are part of CI.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "netns integration tests need root (CAP_NET_ADMIN, CAP_BPF); CI runs them as root"
    );
}

/// Runs a command, panicking with its output if it fails.
pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("spawn {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace, deleted on drop.
#[derive(Debug)]
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        require_root();
        let name = unique(tag);
        sh(&["ip", "netns", "add", &name]);
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// `ip -n <ns> <args>`.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut v = vec!["ip", "-n", &self.name];
        v.extend_from_slice(args);
        sh(&v)
    }

    /// `ip netns exec <ns> <args>`.
    pub fn exec(&self, args: &[&str]) -> String {
        let mut v = vec!["ip", "netns", "exec", &self.name];
        v.extend_from_slice(args);
        sh(&v)
    }

    /// A `Command` that runs `program` inside this namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Runs `f` on a thread that has entered this namespace. Sockets created
    /// inside stay in the namespace and may be used from any thread after.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.name);
        std::thread::scope(|s| {
            s.spawn(|| {
                let fd = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
                nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET)
                    .unwrap_or_else(|e| panic!("setns {path}: {e}"));
                f()
            })
            .join()
            .expect("netns thread panicked")
        })
    }

    /// Addresses on `dev` as printed by `ip -o addr show dev`.
    pub fn addrs(&self, dev: &str) -> String {
        self.ip(&["-o", "addr", "show", "dev", dev])
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// A veth pair `a` (in `ns_a`) <-> `b` (in `ns_b`), both up, with addresses.
pub fn veth(ns_a: &Netns, addr_a: &str, ns_b: &Netns, addr_b: &str) -> (String, String) {
    let a = unique("va");
    let b = unique("vb");
    sh(&[
        "ip", "link", "add", &a, "netns", &ns_a.name, "type", "veth", "peer", "name", &b, "netns",
        &ns_b.name,
    ]);
    for (ns, dev, addr) in [(ns_a, &a, addr_a), (ns_b, &b, addr_b)] {
        ns.ip(&["addr", "add", addr, "dev", dev]);
        ns.ip(&["link", "set", dev, "up"]);
    }
    (a, b)
}

/// A process started by a test; killed (SIGKILL, by pid) and reaped on drop.
pub struct Child {
    pub child: std::process::Child,
}

impl Child {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig);
    }

    /// Whether the process has exited (reaps it if so).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
