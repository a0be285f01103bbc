//! Whole hb clusters in network namespaces, with the real binary and the
//! real XDP program.
//!
//! Topology: a "switch" namespace with one bridge per heartbeat medium
//! (`br0`, `br1`); every node namespace has `eth0` (and `eth1`) attached to
//! them, so one ha.cf fits every node; an optional client namespace sits on
//! `br0`. Addresses: node i is 10.200.L.(i+1)/24 on medium L, the client is
//! 10.200.0.100, service addresses live in 10.200.0.0/24.
//!
//! Everything is torn down on drop (namespaces first kill our daemons); if
//! the test panicked, every daemon's log is printed.

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

use crate::netns::{require_root, sh, unique, Child, Netns};

/// Builds (once) and returns the `hb` binary; `HB_BIN` overrides it (the
/// benchmarks use a release build).
pub fn hb_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(b) = std::env::var_os("HB_BIN") {
            return PathBuf::from(b);
        }
        let ws = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .to_path_buf();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "--quiet", "-p", "hb-userspace", "--bin", "hb"])
            .current_dir(&ws)
            .status()
            .expect("run cargo build");
        assert!(st.success(), "building hb failed");
        let target = std::env::var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| ws.join("target"));
        target.join("debug/hb")
    })
    .clone()
}

#[derive(Clone, Debug)]
pub struct Spec {
    pub nodes: usize,
    /// Heartbeat media (bridges): 1 or 2.
    pub links: usize,
    pub auto_failback: &'static str,
    pub keepalive: &'static str,
    pub warntime: &'static str,
    pub deadtime: &'static str,
    pub initdead: &'static str,
    /// haresources content (same on every node).
    pub haresources: String,
    /// Extra ha.cf lines (same on every node).
    pub extra: String,
    /// `bcast` (default) or `ucast`.
    pub media: &'static str,
    pub client: bool,
    /// Also give every interface an IPv6 address (fd00:200:L::i+1/64).
    pub ipv6: bool,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            nodes: 2,
            links: 1,
            auto_failback: "on",
            keepalive: "50ms",
            warntime: "150ms",
            deadtime: "400ms",
            initdead: "2",
            haresources: String::new(),
            extra: String::new(),
            media: "bcast",
            client: false,
            ipv6: false,
        }
    }
}

pub struct Node {
    pub name: String,
    pub ns: Netns,
    pub dir: PathBuf,
    pub daemon: Option<Child>,
    /// Switch-side port names per medium.
    pub ports: Vec<String>,
    starts: u32,
}

pub struct Cluster {
    pub spec: Spec,
    pub nodes: Vec<Node>,
    pub client: Option<Netns>,
    pub sw: Netns,
    pub dir: PathBuf,
}

pub fn node_ip(i: usize, link: usize) -> String {
    format!("10.200.{link}.{}", i + 1)
}

pub const CLIENT_IP: &str = "10.200.0.100";

pub fn node_ip6(i: usize, link: usize) -> String {
    format!("fd00:200:{link}::{}", i + 1)
}

impl Cluster {
    pub fn new(spec: Spec) -> Cluster {
        require_root();
        let dir = std::env::temp_dir().join(unique("hbc"));
        fs::create_dir_all(&dir).unwrap();
        let sw = Netns::new("hbsw");
        for l in 0..spec.links {
            sw.ip(&["link", "add", &format!("br{l}"), "type", "bridge"]);
            sw.ip(&["link", "set", &format!("br{l}"), "up"]);
        }
        let mut nodes = Vec::new();
        for i in 0..spec.nodes {
            let ns = Netns::new("hbn");
            let mut ports = Vec::new();
            for l in 0..spec.links {
                let port = unique("p");
                let eth = format!("eth{l}");
                sh(&[
                    "ip", "link", "add", &eth, "netns", &ns.name, "type", "veth", "peer", "name",
                    &port, "netns", &sw.name,
                ]);
                sw.ip(&["link", "set", &port, "master", &format!("br{l}")]);
                sw.ip(&["link", "set", &port, "up"]);
                ns.ip(&["addr", "add", &format!("{}/24", node_ip(i, l)), "dev", &eth]);
                if spec.ipv6 {
                    ns.ip(&[
                        "addr",
                        "add",
                        &format!("{}/64", node_ip6(i, l)),
                        "dev",
                        &eth,
                        "nodad",
                    ]);
                }
                ns.ip(&["link", "set", &eth, "up"]);
                ports.push(port);
            }
            let ndir = dir.join(format!("node{i}"));
            nodes.push(Node {
                name: format!("node{i}"),
                ns,
                dir: ndir,
                daemon: None,
                ports,
                starts: 0,
            });
        }
        let client = spec.client.then(|| {
            let c = Netns::new("hbcl");
            let port = unique("p");
            sh(&[
                "ip", "link", "add", "eth0", "netns", &c.name, "type", "veth", "peer", "name",
                &port, "netns", &sw.name,
            ]);
            sw.ip(&["link", "set", &port, "master", "br0"]);
            sw.ip(&["link", "set", &port, "up"]);
            c.ip(&["addr", "add", &format!("{CLIENT_IP}/24"), "dev", "eth0"]);
            if spec.ipv6 {
                c.ip(&["addr", "add", "fd00:200:0::100/64", "dev", "eth0", "nodad"]);
            }
            c.ip(&["link", "set", "eth0", "up"]);
            c
        });
        let c = Cluster {
            spec,
            nodes,
            client,
            sw,
            dir,
        };
        for i in 0..c.nodes.len() {
            c.write_config(i);
        }
        c
    }

    /// The ha.cf of node `i`.
    pub fn hacf(&self, i: usize) -> String {
        let s = &self.spec;
        let d = &self.nodes[i].dir;
        let mut media = String::new();
        for l in 0..s.links {
            match s.media {
                "ucast" => {
                    for j in 0..s.nodes {
                        media += &format!("ucast eth{l} {}\n", node_ip(j, l));
                    }
                }
                _ => media += &format!("bcast eth{l}\n"),
            }
        }
        let names: Vec<String> = (0..s.nodes).map(|j| format!("node{j}")).collect();
        format!(
            "# generated by the hb test harness\nkeepalive {}\nwarntime {}\ndeadtime {}\ninitdead {}\n{media}auto_failback {}\nnode {}\ncontrol_socket {}/hb.sock\nstate_dir {}/state\nrsctmp_dir {}/rsctmp\nresource_dir {}/resource.d\ninit_dir {}/init.d\nmonitor_interval 500ms\non_stop_failure block\nstop_retries 2\nstop_retry_interval 100ms\narp_count 2\narp_interval 50ms\n{}",
            s.keepalive,
            s.warntime,
            s.deadtime,
            s.initdead,
            s.auto_failback,
            names.join(" "),
            d.display(),
            d.display(),
            d.display(),
            d.display(),
            d.display(),
            s.extra
        )
    }

    /// Replaces node `i`'s ha.cf (call before `start`).
    pub fn set_hacf(&self, i: usize, content: &str) {
        fs::write(self.nodes[i].dir.join("ha.cf"), content).unwrap();
    }

    /// Replaces node `i`'s haresources.
    pub fn set_haresources(&self, i: usize, content: &str) {
        fs::write(self.nodes[i].dir.join("haresources"), content).unwrap();
    }

    pub fn write_config(&self, i: usize) {
        let d = &self.nodes[i].dir;
        for sub in ["state", "rsctmp", "resource.d", "init.d"] {
            fs::create_dir_all(d.join(sub)).unwrap();
        }
        fs::write(d.join("ha.cf"), self.hacf(i)).unwrap();
        fs::write(d.join("haresources"), &self.spec.haresources).unwrap();
        let ak = d.join("authkeys");
        fs::write(&ak, "auth 1\n1 sha256 test-cluster-secret-0123456789\n").unwrap();
        fs::set_permissions(&ak, fs::Permissions::from_mode(0o600)).unwrap();
    }

    /// Installs an executable script `name` into every node's resource.d.
    pub fn install_script(&self, name: &str, body: &str) {
        for n in &self.nodes {
            let p = n.dir.join("resource.d").join(name);
            fs::write(&p, body).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        }
    }

    pub fn socket(&self, i: usize) -> PathBuf {
        self.nodes[i].dir.join("hb.sock")
    }

    pub fn log_path(&self, i: usize) -> PathBuf {
        self.nodes[i].dir.join("hb.log")
    }

    /// `hb <args>` for node `i` (run in its namespace), not started.
    pub fn hb(&self, i: usize, args: &[&str]) -> Command {
        self.hb_pinned(i, None, args)
    }

    /// `hb <args>` for node `i`, optionally pinned to `cpus` (a taskset
    /// list), not started.
    pub fn hb_pinned(&self, i: usize, cpus: Option<&str>, args: &[&str]) -> Command {
        let n = &self.nodes[i];
        let mut c = match cpus {
            Some(list) => {
                let mut t = Command::new("taskset");
                t.args(["-c", list, "ip", "netns", "exec", &n.ns.name])
                    .arg(hb_bin());
                t
            }
            None => n.ns.command(hb_bin().to_str().unwrap()),
        };
        c.args(["-c", n.dir.to_str().unwrap(), "--node", &n.name]);
        c.args(args);
        c
    }

    /// Starts the daemon of node `i`.
    pub fn start(&mut self, i: usize) {
        self.start_pinned(i, None);
    }

    /// Starts the daemon of node `i`, pinned to `cpus` (a taskset list).
    pub fn start_pinned(&mut self, i: usize, cpus: Option<&str>) {
        assert!(self.nodes[i].daemon.is_none(), "node{i} already running");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(i))
            .unwrap();
        let mut cmd = self.hb_pinned(i, cpus, &["run"]);
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let child = cmd.spawn().expect("spawn hb");
        let n = &mut self.nodes[i];
        n.starts += 1;
        n.daemon = Some(Child { child });
    }

    pub fn start_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.start(i);
        }
    }

    /// SIGKILL: the daemon dies, whatever it configured stays.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut d) = self.nodes[i].daemon.take() {
            d.signal(nix::sys::signal::Signal::SIGKILL);
            let _ = d.child.wait();
        }
    }

    /// SIGTERM and wait for a clean exit (releases resources first).
    pub fn stop(&mut self, i: usize, timeout: Duration) -> std::process::ExitStatus {
        let mut d = self.nodes[i].daemon.take().expect("running");
        d.signal(nix::sys::signal::Signal::SIGTERM);
        let t = Instant::now();
        loop {
            if let Some(st) = d.exited() {
                return st;
            }
            assert!(
                t.elapsed() < timeout,
                "node{i} did not exit within {timeout:?}\n{}",
                self.log(i)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether node `i`'s daemon process is still running.
    pub fn running(&mut self, i: usize) -> bool {
        self.nodes[i]
            .daemon
            .as_mut()
            .is_some_and(|d| d.exited().is_none())
    }

    /// Cuts node `i` off medium `link` (its switch port goes down).
    pub fn link(&self, i: usize, link: usize, up: bool) {
        self.sw.ip(&[
            "link",
            "set",
            &self.nodes[i].ports[link],
            if up { "up" } else { "down" },
        ]);
    }

    /// The machine dies: daemon killed, links down, and what a reboot
    /// loses is gone (service addresses, agents' tmpfs state).
    pub fn power_off(&mut self, i: usize) {
        self.kill(i);
        for l in 0..self.spec.links {
            self.link(i, l, false);
            let eth = format!("eth{l}");
            let own = node_ip(i, l);
            for line in self.nodes[i]
                .ns
                .ip(&["-o", "addr", "show", "dev", &eth])
                .lines()
            {
                let Some(cidr) = line
                    .split_whitespace()
                    .skip_while(|w| *w != "inet" && *w != "inet6")
                    .nth(1)
                else {
                    continue;
                };
                if !cidr.starts_with(&format!("{own}/")) && !cidr.starts_with("fe80:") {
                    self.nodes[i].ns.ip(&["addr", "del", cidr, "dev", &eth]);
                }
            }
        }
        let tmp = self.nodes[i].dir.join("rsctmp");
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(&tmp).unwrap();
    }

    /// Links back up after `power_off` (start the daemon separately).
    pub fn power_on(&mut self, i: usize) {
        for l in 0..self.spec.links {
            self.link(i, l, true);
        }
    }

    /// Isolates the given nodes' ports from each other on every bridge
    /// (bridge port isolation): they cannot hear each other, but all still
    /// reach the client.
    pub fn partition(&self, nodes: &[usize], on: bool) {
        for &i in nodes {
            for l in 0..self.spec.links {
                self.sw.exec(&[
                    "bridge",
                    "link",
                    "set",
                    "dev",
                    &self.nodes[i].ports[l],
                    "isolated",
                    if on { "on" } else { "off" },
                ]);
            }
        }
    }

    /// The daemon's `hb status --json`, or None if it does not answer.
    pub fn status(&self, i: usize) -> Option<serde_json::Value> {
        let out = self
            .hb(i, &["status", "--json"])
            .stderr(Stdio::null())
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    pub fn log(&self, i: usize) -> String {
        fs::read_to_string(self.log_path(i)).unwrap_or_default()
    }

    /// Whether `addr` is configured on node `i`'s eth0.
    pub fn has_addr(&self, i: usize, addr: &str) -> bool {
        self.nodes[i]
            .ns
            .addrs("eth0")
            .contains(&format!(" {addr}/"))
    }

    /// Nodes on which `addr` is configured.
    pub fn holders_of(&self, addr: &str) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.has_addr(i, addr))
            .collect()
    }

    /// The Dummy OCF agent's state file for `instance` on node `i`.
    pub fn dummy_running(&self, i: usize, instance: &str) -> bool {
        self.nodes[i]
            .dir
            .join("rsctmp")
            .join(format!("Dummy-{instance}.state"))
            .exists()
    }

    /// Waits until `cond` holds, failing with `what` and every log.
    pub fn wait(
        &mut self,
        timeout: Duration,
        what: &str,
        mut cond: impl FnMut(&mut Cluster) -> bool,
    ) -> Duration {
        let t = Instant::now();
        loop {
            if cond(self) {
                return t.elapsed();
            }
            if t.elapsed() > timeout {
                panic!("timed out after {timeout:?} waiting for: {what}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Asserts `cond` holds continuously for `d` (sampled).
    pub fn hold(&mut self, d: Duration, what: &str, mut cond: impl FnMut(&mut Cluster) -> bool) {
        let t = Instant::now();
        while t.elapsed() < d {
            assert!(cond(self), "{what} stopped holding after {:?}", t.elapsed());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The state node `i` reports for node `j` (init/up/dead).
    pub fn sees(&self, i: usize, j: usize) -> Option<String> {
        let s = self.status(i)?;
        s["nodes"][j]["state"].as_str().map(str::to_string)
    }

    /// `ping` from the client to `addr`: true if answered.
    pub fn client_ping(&self, addr: &str) -> bool {
        let c = self.client.as_ref().expect("cluster has a client");
        Command::new("ip")
            .args([
                "netns", "exec", &c.name, "ping", "-c", "1", "-W", "1", "-q", addr,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            if let Some(mut d) = self.nodes[i].daemon.take() {
                d.signal(nix::sys::signal::Signal::SIGKILL);
                let _ = d.child.wait();
            }
        }
        if std::thread::panicking() {
            for i in 0..self.nodes.len() {
                eprintln!("===== log of node{i} =====\n{}", self.log(i));
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}
