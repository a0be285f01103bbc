//! The cluster configuration: Heartbeat's `ha.cf`, `haresources` and
//! `authkeys`, loaded from one directory (default `/etc/ha.d`), validated as a
//! whole. Every problem names its file and line; warnings (obsolete or
//! ignored directives, weak auth) are kept for `hb check` and the log.

pub mod authkeys;
pub mod hacf;
pub mod haresources;
pub mod lex;

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    time::Duration,
};

pub use authkeys::{AuthKey, AuthKeys};
pub use haresources::{IpSpec, OcfSpec, Resource, ResourceGroup, ResourceKind};
pub use lex::{ConfigError, ConfigErrors};

/// A heartbeat medium (one `bcast`/`mcast`/`ucast`/`serial` target).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Medium {
    /// UDP broadcast on an interface (IPv4).
    Bcast { ifname: String, port: u16 },
    /// UDP multicast (IPv4 `mcast` or IPv6 `mcast6`).
    Mcast {
        ifname: String,
        group: IpAddr,
        port: u16,
        ttl: u8,
        loopback: bool,
    },
    /// UDP unicast to one peer address (`ucast`, `ucast6`).
    Ucast {
        ifname: String,
        peer: IpAddr,
        port: u16,
    },
    /// A serial line.
    Serial { device: PathBuf, baud: u32 },
}

impl Medium {
    /// Interface of a UDP medium.
    pub fn ifname(&self) -> Option<&str> {
        match self {
            Medium::Bcast { ifname, .. }
            | Medium::Mcast { ifname, .. }
            | Medium::Ucast { ifname, .. } => Some(ifname),
            Medium::Serial { .. } => None,
        }
    }

    pub fn port(&self) -> Option<u16> {
        match self {
            Medium::Bcast { port, .. }
            | Medium::Mcast { port, .. }
            | Medium::Ucast { port, .. } => Some(*port),
            Medium::Serial { .. } => None,
        }
    }

    /// Short human name, e.g. `bcast eth0`, `ucast eth1 10.0.0.2`.
    pub fn describe(&self) -> String {
        match self {
            Medium::Bcast { ifname, .. } => format!("bcast {ifname}"),
            Medium::Mcast { ifname, group, .. } => format!("mcast {ifname} {group}"),
            Medium::Ucast { ifname, peer, .. } => format!("ucast {ifname} {peer}"),
            Medium::Serial { device, .. } => format!("serial {}", device.display()),
        }
    }
}

/// A medium and the ha.cf line it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediumDef {
    pub medium: Medium,
    pub line: usize,
}

/// `auto_failback` (Heartbeat FAQ q8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AutoFailback {
    /// Normal failback: groups return to their preferred node.
    On,
    /// Nice failback: groups stay where they run.
    Off,
}

/// Where heartbeat arrival times come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TimestampSource {
    /// XDP if it loads and attaches, else kernel socket timestamps (default).
    Auto,
    /// XDP or refuse to start.
    Xdp,
    /// Kernel socket timestamps (`SO_TIMESTAMPNS`), no XDP.
    Kernel,
    /// The time userspace reads the packet (classic Heartbeat behaviour;
    /// for comparison benchmarks only).
    Userspace,
}

/// What to do when a resource cannot be stopped after all retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StopFailure {
    /// Reboot the machine, as Heartbeat does, so peers can take over safely.
    Reboot,
    /// Keep the group marked as held here (nobody else starts it) and wait
    /// for the operator (`hb cleanup`).
    Block,
}

/// A `ping` or `ping_group` target (ipfail-style tie breaker).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PingTarget {
    /// `ping`: the address; `ping_group`: the group name.
    pub name: String,
    /// Reachable if any of these replies.
    pub addrs: Vec<IpAddr>,
    pub line: usize,
}

/// A `respawn` directive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Respawn {
    pub user: String,
    pub argv: Vec<String>,
    pub line: usize,
}

/// Generation number source (`hbgenmethod`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GenMethod {
    File,
    Time,
}

/// Membership timing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    pub keepalive: Duration,
    pub deadtime: Duration,
    pub warntime: Duration,
    pub initdead: Duration,
}

/// Resource execution settings (hb extensions, with Heartbeat's defaults).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceSettings {
    /// HA_RSCTMP for scripts and agents (default /run/resource-agents).
    pub rsctmp_dir: PathBuf,
    pub resource_dir: PathBuf,
    pub init_dir: PathBuf,
    pub ocf_root: PathBuf,
    pub start_timeout: Duration,
    pub stop_timeout: Duration,
    pub monitor_timeout: Duration,
    /// 0 disables periodic monitoring.
    pub monitor_interval: Duration,
    pub stop_retries: u32,
    pub stop_retry_interval: Duration,
    pub on_stop_failure: StopFailure,
    pub arp_count: u32,
    pub arp_interval: Duration,
}

/// The whole, validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub dir: PathBuf,
    pub cluster_name: String,
    pub cluster_id: u32,
    /// Node names in ha.cf order (lowercased: Heartbeat compares them
    /// case-insensitively).
    pub nodes: Vec<String>,
    /// Index of this node in `nodes`.
    pub local: usize,
    pub timing: Timing,
    pub udpport: u16,
    pub media: Vec<MediumDef>,
    pub auto_failback: AutoFailback,
    pub ping: Vec<PingTarget>,
    pub deadping: Duration,
    pub respawn: Vec<Respawn>,
    pub logfile: Option<PathBuf>,
    pub debugfile: Option<PathBuf>,
    pub logfacility: Option<String>,
    pub debug: u8,
    pub realtime: bool,
    pub rtprio: i32,
    pub genmethod: GenMethod,
    pub timestamps: TimestampSource,
    pub control_socket: PathBuf,
    pub state_dir: PathBuf,
    pub resources: ResourceSettings,
    pub groups: Vec<ResourceGroup>,
    pub auth: AuthKeys,
    /// Hash of everything peers must agree on (nodes, groups); carried in
    /// heartbeats so a mismatch is detected.
    pub digest: u32,
    pub warnings: Vec<ConfigError>,
}

/// Overrides from the command line.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// This node's name instead of `uname -n`.
    pub node: Option<String>,
    pub control_socket: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
}

impl Config {
    pub fn local_name(&self) -> &str {
        &self.nodes[self.local]
    }

    pub fn node_index(&self, name: &str) -> Option<usize> {
        let name = name.to_ascii_lowercase();
        self.nodes.iter().position(|n| *n == name)
    }

    /// The node id (wire) of node index `i`.
    pub fn node_id(&self, i: usize) -> u32 {
        hb_common::node_id(self.nodes[i].as_bytes())
    }

    /// The UDP port every UDP medium uses (validated to be one port).
    pub fn udp_port(&self) -> u16 {
        self.media
            .iter()
            .find_map(|m| m.medium.port())
            .unwrap_or(self.udpport)
    }

    /// Distinct interfaces of UDP media, in first-use order.
    pub fn udp_interfaces(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for m in &self.media {
            if let Some(i) = m.medium.ifname() {
                if !v.iter().any(|x| x == i) {
                    v.push(i.to_string());
                }
            }
        }
        v
    }

    /// Loads and validates `dir/{ha.cf,haresources,authkeys}`.
    pub fn load(dir: &Path, ov: &Overrides) -> Result<Config, ConfigErrors> {
        let mut errs = ConfigErrors::default();
        let read = |name: &str, errs: &mut ConfigErrors| -> Option<String> {
            let p = dir.join(name);
            match std::fs::read_to_string(&p) {
                Ok(s) => Some(s),
                Err(e) => {
                    errs.push(&p, 0, format!("cannot read: {e}"));
                    None
                }
            }
        };
        let hacf_src = read("ha.cf", &mut errs);
        let hares_src = read("haresources", &mut errs);
        let auth = authkeys::load(&dir.join("authkeys"));
        let (Some(hacf_src), Some(hares_src)) = (hacf_src, hares_src) else {
            errs.absorb(auth);
            return Err(errs);
        };
        let local_name = match &ov.node {
            Some(n) => n.clone(),
            None => nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        let cfg = errs.absorb(hacf::parse(&dir.join("ha.cf"), &hacf_src, &local_name));
        let auth = errs.absorb(auth);
        let nodes: Vec<String> = cfg
            .as_ref()
            .map(|c| c.nodes.clone())
            .unwrap_or_else(|| hacf::node_names(&hacf_src));
        let mut groups = errs.absorb(haresources::parse(
            &dir.join("haresources"),
            &hares_src,
            &nodes,
        ));
        if let (Some(c), Some(g)) = (cfg.as_ref(), groups.as_mut()) {
            haresources::resolve_scripts(&dir.join("haresources"), g, &c.resources, &mut errs);
        }
        let (Some(mut cfg), Some(groups), Some(auth)) = (cfg, groups, auth) else {
            return Err(errs);
        };
        if !errs.is_empty() {
            return Err(errs);
        }
        cfg.warnings.extend(auth.warnings.iter().cloned());
        cfg.dir = dir.to_path_buf();
        cfg.digest = digest(&cfg.nodes, &groups);
        cfg.groups = groups;
        cfg.auth = auth;
        if let Some(s) = &ov.control_socket {
            cfg.control_socket = s.clone();
        }
        if let Some(s) = &ov.state_dir {
            cfg.state_dir = s.clone();
        }
        Ok(cfg)
    }
}

/// FNV-1a over the node list and every group's preferred node and resources.
pub fn digest(nodes: &[String], groups: &[ResourceGroup]) -> u32 {
    let mut h = hb_common::ids::Fnv1a::new();
    for n in nodes {
        h.write(n.as_bytes());
        h.write(&[0]);
    }
    for g in groups {
        h.write(&[1]);
        h.write(g.preferred.as_bytes());
        for r in &g.resources {
            h.write(&[2]);
            h.write(r.raw.as_bytes());
        }
    }
    h.finish()
}
