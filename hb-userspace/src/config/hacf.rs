//! `ha.cf` parser: every Heartbeat 3.0.6 directive is implemented, accepted
//! with a warning (when ignoring it is harmless), or refused with the reason
//! (when ignoring it would silently drop protection, e.g. `stonith`).
//!
//! As in Heartbeat, order matters: `udpport` and `baud` apply to the media
//! lines that follow them. Post-parse checks and defaults follow Heartbeat's
//! config.c (warntime, initdead, deadtime > 2 x keepalive, ...).

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use super::{
    lex::{self, ConfigErrors},
    AutoFailback, Config, ConfigError, GenMethod, Medium, MediumDef, PingTarget, ResourceSettings,
    Respawn, StopFailure, TimestampSource, Timing,
};

/// Directives hb implements (for the "valid directives" hint).
pub const DIRECTIVES: &[&str] = &[
    "keepalive",
    "deadtime",
    "warntime",
    "initdead",
    "deadping",
    "udpport",
    "baud",
    "bcast",
    "mcast",
    "mcast6",
    "ucast",
    "ucast6",
    "serial",
    "node",
    "cluster",
    "auto_failback",
    "nice_failback",
    "ping",
    "ping6",
    "ping_group",
    "respawn",
    "logfile",
    "debugfile",
    "logfacility",
    "debug",
    "realtime",
    "rtprio",
    "hbgenmethod",
    "autojoin",
    // hb extensions
    "cluster_id",
    "timestamps",
    "control_socket",
    "state_dir",
    "resource_dir",
    "init_dir",
    "ocf_root",
    "start_timeout",
    "stop_timeout",
    "monitor_timeout",
    "monitor_interval",
    "stop_retries",
    "stop_retry_interval",
    "on_stop_failure",
    "arp_count",
    "arp_interval",
];

/// Heartbeat directives accepted and ignored (no effect on hb's behaviour).
const IGNORED: &[(&str, &str)] = &[
    ("hopfudge", "hb does not forward over serial rings"),
    ("use_logd", "hb logs to stderr/logfile itself"),
    ("conn_logd_time", "hb does not use ha_logd"),
    ("use_apphbd", "hb does not use apphbd"),
    (
        "log_badpack",
        "hb always counts bad packets (see `hb status`)",
    ),
    ("syslogmsgfmt", "hb log lines are always syslog-style"),
    ("coredumps", "core dumps follow the system settings"),
    ("coreroot", "core dumps follow the system settings"),
    ("msgfmt", "hb uses its own binary wire format"),
    ("compression", "hb heartbeats are never compressed"),
    (
        "compression_threshold",
        "hb heartbeats are never compressed",
    ),
    (
        "traditional_compression",
        "hb heartbeats are never compressed",
    ),
    ("max_rexmit_delay", "hb heartbeats are not retransmitted"),
    ("memreserve", "not needed"),
    ("apiauth", "hb has no client API; use `hb status --json`"),
    ("uuidfrom", "hb identifies nodes by name"),
    ("env", "respawned programs inherit hb's environment"),
    ("normalpoll", "not needed"),
    ("record_config_changes", "Pacemaker-only"),
    ("record_pengine_inputs", "Pacemaker-only"),
    ("enable_config_writes", "Pacemaker-only"),
    ("crm_daemon_dir", "Pacemaker-only"),
    ("crmd_spawns_pengine", "Pacemaker-only"),
    (
        "watchdog",
        "hb does not drive a watchdog device; use systemd's WatchdogSec",
    ),
];

/// Heartbeat directives hb refuses: ignoring them would silently change
/// safety properties.
const REFUSED: &[(&str, &str)] = &[
    (
        "stonith",
        "hb has no STONITH support; remove the line to run without fencing",
    ),
    (
        "stonith_host",
        "hb has no STONITH support; remove the line to run without fencing",
    ),
    ("failfast", "not supported; use `respawn`"),
    ("quorum_server", "hb has no quorum server support"),
    ("hbaping", "not supported; use `ping`"),
];

const BAUDS: &[u32] = &[9600, 19200, 38400, 57600, 115200, 230400, 460800];

struct Builder<'a> {
    file: &'a Path,
    errs: ConfigErrors,
    warnings: Vec<ConfigError>,
    udpport: u16,
    baud: u32,
    keepalive: Option<(Duration, usize)>,
    deadtime: Option<(Duration, usize)>,
    warntime: Option<(Duration, usize)>,
    initdead: Option<(Duration, usize)>,
    deadping: Option<Duration>,
    nodes: Vec<(String, usize)>,
    cluster: String,
    cluster_id: Option<u32>,
    media: Vec<MediumDef>,
    auto_failback: Option<AutoFailback>,
    ping: Vec<PingTarget>,
    respawn: Vec<Respawn>,
    logfile: Option<PathBuf>,
    debugfile: Option<PathBuf>,
    logfacility: Option<String>,
    debug: u8,
    realtime: bool,
    rtprio: i32,
    genmethod: GenMethod,
    timestamps: TimestampSource,
    control_socket: PathBuf,
    state_dir: PathBuf,
    res: ResourceSettings,
}

impl Builder<'_> {
    fn err(&mut self, line: usize, msg: impl Into<String>) {
        self.errs.push(self.file, line, msg);
    }

    fn warn(&mut self, line: usize, msg: impl Into<String>) {
        self.warnings.push(ConfigError {
            file: self.file.to_path_buf(),
            line,
            msg: msg.into(),
        });
    }

    /// Exactly one value after the directive.
    fn one<'t>(&mut self, line: usize, d: &str, args: &[&'t str], what: &str) -> Option<&'t str> {
        if args.len() != 1 {
            self.err(line, format!("`{d}` takes exactly one value: {what}"));
            return None;
        }
        Some(args[0])
    }

    fn time(
        &mut self,
        line: usize,
        d: &str,
        args: &[&str],
        min: Duration,
        max: Duration,
    ) -> Option<Duration> {
        let v = self.one(line, d, args, "a time such as `2`, `500ms` or `250us`")?;
        match lex::parse_duration(v) {
            Ok(t) if t >= min && t <= max => Some(t),
            Ok(_) => {
                self.err(
                    line,
                    format!("`{d} {v}` is out of range: valid is {min:?} to {max:?}"),
                );
                None
            }
            Err(e) => {
                self.err(line, format!("`{d}`: {e}"));
                None
            }
        }
    }

    fn int<T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy>(
        &mut self,
        line: usize,
        d: &str,
        v: &str,
        min: T,
        max: T,
    ) -> Option<T> {
        match v.parse::<T>() {
            Ok(n) if n >= min && n <= max => Some(n),
            _ => {
                self.err(
                    line,
                    format!("`{d}`: `{v}` is not a number from {min} to {max}"),
                );
                None
            }
        }
    }

    fn bool(&mut self, line: usize, d: &str, args: &[&str]) -> Option<bool> {
        let v = self.one(line, d, args, "on or off")?;
        let b = lex::parse_bool(v);
        if b.is_none() {
            self.err(
                line,
                format!("`{d}`: `{v}` is not a boolean (use on/off, yes/no, true/false)"),
            );
        }
        b
    }

    fn ip(&mut self, line: usize, d: &str, v: &str) -> Option<IpAddr> {
        match v.parse::<IpAddr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                self.err(line, format!("`{d}`: `{v}` is not an IP address"));
                None
            }
        }
    }

    fn iface(&mut self, line: usize, d: &str, v: &str) -> Option<String> {
        if v.is_empty() || v.len() > 15 || v.contains('/') || v.contains(char::is_whitespace) {
            self.err(
                line,
                format!("`{d}`: `{v}` is not a valid interface name (1-15 characters, no `/`)"),
            );
            return None;
        }
        Some(v.to_string())
    }

    fn directive(&mut self, line: usize, d: &str, args: &[&str], whole: &str) {
        const MS: Duration = Duration::from_millis(1);
        const HOUR: Duration = Duration::from_secs(3600);
        match d {
            "keepalive" => {
                self.keepalive = self
                    .time(line, d, args, MS, Duration::from_secs(60))
                    .map(|t| (t, line))
            }
            "deadtime" => self.deadtime = self.time(line, d, args, 2 * MS, HOUR).map(|t| (t, line)),
            "warntime" => self.warntime = self.time(line, d, args, MS, HOUR).map(|t| (t, line)),
            "initdead" => self.initdead = self.time(line, d, args, MS, HOUR).map(|t| (t, line)),
            "deadping" => self.deadping = self.time(line, d, args, MS, HOUR),
            "udpport" => {
                if let Some(v) = self.one(line, d, args, "a UDP port (1-65535)") {
                    if let Some(p) = self.int(line, d, v, 1u16, 65535) {
                        self.udpport = p;
                    }
                }
            }
            "baud" => {
                if let Some(v) = self.one(line, d, args, "a serial speed") {
                    match v.parse::<u32>() {
                        Ok(b) if BAUDS.contains(&b) => self.baud = b,
                        _ => self.err(line, format!("`baud {v}`: valid speeds are {BAUDS:?}")),
                    }
                }
            }
            "bcast" => {
                if args.is_empty() {
                    self.err(
                        line,
                        "`bcast` needs at least one interface: `bcast eth0 [eth1 ...]`",
                    );
                }
                for a in args {
                    if let Some(ifname) = self.iface(line, d, a) {
                        self.media.push(MediumDef {
                            medium: Medium::Bcast {
                                ifname,
                                port: self.udpport,
                            },
                            line,
                        });
                    }
                }
            }
            "mcast" | "mcast6" => self.mcast(line, d, args),
            "ucast" | "ucast6" => {
                if args.len() != 2 {
                    self.err(
                        line,
                        format!("`{d}` takes an interface and a peer address: `{d} eth0 10.0.0.2`"),
                    );
                    return;
                }
                let (Some(ifname), Some(peer)) =
                    (self.iface(line, d, args[0]), self.ip(line, d, args[1]))
                else {
                    return;
                };
                if d == "ucast6" && !peer.is_ipv6() {
                    self.err(line, format!("`ucast6`: `{peer}` is not an IPv6 address"));
                    return;
                }
                self.media.push(MediumDef {
                    medium: Medium::Ucast {
                        ifname,
                        peer,
                        port: self.udpport,
                    },
                    line,
                });
            }
            "serial" => {
                if args.is_empty() {
                    self.err(
                        line,
                        "`serial` needs at least one device: `serial /dev/ttyS0`",
                    );
                }
                for a in args {
                    self.media.push(MediumDef {
                        medium: Medium::Serial {
                            device: PathBuf::from(a),
                            baud: self.baud,
                        },
                        line,
                    });
                }
            }
            "node" => {
                if args.is_empty() {
                    self.err(
                        line,
                        "`node` needs at least one node name (as printed by `uname -n`)",
                    );
                }
                for a in args {
                    let n = a.to_ascii_lowercase();
                    if n.len() > 64 {
                        self.err(line, format!("node name `{a}` is longer than 64 bytes"));
                    } else if let Some((_, first)) = self.nodes.iter().find(|(x, _)| *x == n) {
                        let first = *first;
                        self.err(
                            line,
                            format!("node `{a}` is listed twice (first on line {first})"),
                        );
                    } else {
                        self.nodes.push((n, line));
                    }
                }
            }
            "cluster" => {
                if let Some(v) = self.one(line, d, args, "a cluster name") {
                    self.cluster = v.to_string();
                }
            }
            "cluster_id" => {
                if let Some(v) = self.one(line, d, args, "a number from 1 to 4294967295") {
                    self.cluster_id = self.int(line, d, v, 1u32, u32::MAX);
                }
            }
            "auto_failback" => {
                if let Some(v) = self.one(line, d, args, "on, off or legacy") {
                    self.auto_failback = match v.to_ascii_lowercase().as_str() {
                        "legacy" => {
                            self.warn(line, "`auto_failback legacy` is treated as `on` (groups return to their preferred node)");
                            Some(AutoFailback::On)
                        }
                        other => match lex::parse_bool(other) {
                            Some(true) => Some(AutoFailback::On),
                            Some(false) => Some(AutoFailback::Off),
                            None => {
                                self.err(
                                    line,
                                    format!(
                                        "`auto_failback {v}`: valid values are on, off, legacy"
                                    ),
                                );
                                None
                            }
                        },
                    };
                }
            }
            "nice_failback" => {
                if let Some(b) = self.bool(line, d, args) {
                    self.warn(
                        line,
                        format!(
                            "`nice_failback` is obsolete: use `auto_failback {}`",
                            if b { "off" } else { "on" }
                        ),
                    );
                    if self.auto_failback.is_none() {
                        self.auto_failback = Some(if b {
                            AutoFailback::Off
                        } else {
                            AutoFailback::On
                        });
                    }
                }
            }
            "ping" | "ping6" => {
                if args.is_empty() {
                    self.err(line, format!("`{d}` needs at least one address"));
                }
                for a in args {
                    if let Some(ip) = self.ip(line, d, a) {
                        self.ping.push(PingTarget {
                            name: a.to_string(),
                            addrs: vec![ip],
                            line,
                        });
                    }
                }
            }
            "ping_group" => {
                if args.len() < 2 {
                    self.err(line, "`ping_group` takes a name and at least one address: `ping_group routers 10.0.0.1 10.0.0.2`");
                    return;
                }
                let addrs: Vec<IpAddr> = args[1..]
                    .iter()
                    .filter_map(|a| self.ip(line, d, a))
                    .collect();
                if addrs.len() == args.len() - 1 {
                    self.ping.push(PingTarget {
                        name: args[0].to_string(),
                        addrs,
                        line,
                    });
                }
            }
            "respawn" => {
                let parts: Vec<&str> = whole.split_whitespace().skip(1).collect();
                if parts.len() < 2 {
                    self.err(line, "`respawn` takes a user and a program: `respawn hacluster /usr/lib/heartbeat/ipfail`");
                    return;
                }
                self.respawn.push(Respawn {
                    user: parts[0].to_string(),
                    argv: parts[1..].iter().map(|s| s.to_string()).collect(),
                    line,
                });
            }
            "logfile" | "debugfile" => {
                if let Some(v) = self.one(line, d, args, "a file path") {
                    let p = Some(PathBuf::from(v));
                    if d == "logfile" {
                        self.logfile = p
                    } else {
                        self.debugfile = p
                    }
                }
            }
            "logfacility" => {
                if let Some(v) = self.one(line, d, args, "a syslog facility or `none`") {
                    const FAC: &[&str] = &[
                        "none", "auth", "authpriv", "cron", "daemon", "kern", "lpr", "mail",
                        "news", "syslog", "user", "uucp", "local0", "local1", "local2", "local3",
                        "local4", "local5", "local6", "local7",
                    ];
                    if FAC.contains(&v) {
                        self.logfacility = Some(v.to_string());
                    } else {
                        self.err(
                            line,
                            format!("`logfacility {v}`: valid facilities are {}", FAC.join(", ")),
                        );
                    }
                }
            }
            "debug" => {
                if let Some(v) = self.one(line, d, args, "a level from 0 to 255") {
                    if let Some(n) = self.int(line, d, v, 0u8, 255) {
                        self.debug = n;
                    }
                }
            }
            "realtime" => {
                if let Some(b) = self.bool(line, d, args) {
                    self.realtime = b;
                }
            }
            "rtprio" => {
                if let Some(v) = self.one(line, d, args, "a priority from 1 to 99") {
                    if let Some(n) = self.int(line, d, v, 1i32, 99) {
                        self.rtprio = n;
                    }
                }
            }
            "hbgenmethod" => {
                if let Some(v) = self.one(line, d, args, "file or time") {
                    match v {
                        "file" => self.genmethod = GenMethod::File,
                        "time" => self.genmethod = GenMethod::Time,
                        _ => self.err(
                            line,
                            format!("`hbgenmethod {v}`: valid values are file, time"),
                        ),
                    }
                }
            }
            "autojoin" => {
                if let Some(v) = self.one(line, d, args, "none") {
                    if v != "none" {
                        self.err(line, format!("`autojoin {v}` is not supported: list every node with `node` (only `autojoin none`)"));
                    }
                }
            }
            "crm" | "pacemaker" => {
                if let Some(v) = self.one(line, d, args, "off") {
                    if lex::parse_bool(v) != Some(false) {
                        self.err(line, format!("`{d} {v}`: hb runs haresources (v1) clusters only; set `{d} off` or remove the line"));
                    }
                }
            }
            "timestamps" => {
                if let Some(v) = self.one(line, d, args, "auto, xdp, kernel or userspace") {
                    self.timestamps = match v {
                        "auto" => TimestampSource::Auto,
                        "xdp" => TimestampSource::Xdp,
                        "kernel" => TimestampSource::Kernel,
                        "userspace" => {
                            self.warn(line, "`timestamps userspace` measures arrival when the daemon gets to run, which makes heartbeats look late under load; use it only for comparisons");
                            TimestampSource::Userspace
                        }
                        _ => {
                            self.err(line, format!("`timestamps {v}`: valid values are auto, xdp, kernel, userspace"));
                            return;
                        }
                    }
                }
            }
            "control_socket" | "state_dir" | "rsctmp_dir" | "resource_dir" | "init_dir"
            | "ocf_root" => {
                if let Some(v) = self.one(line, d, args, "an absolute path") {
                    if !v.starts_with('/') {
                        self.err(line, format!("`{d} {v}`: must be an absolute path"));
                        return;
                    }
                    let p = PathBuf::from(v);
                    match d {
                        "control_socket" => self.control_socket = p,
                        "state_dir" => self.state_dir = p,
                        "rsctmp_dir" => self.res.rsctmp_dir = p,
                        "resource_dir" => self.res.resource_dir = p,
                        "init_dir" => self.res.init_dir = p,
                        _ => self.res.ocf_root = p,
                    }
                }
            }
            "start_timeout" | "stop_timeout" | "monitor_timeout" => {
                if let Some(t) = self.time(line, d, args, 10 * MS, HOUR) {
                    match d {
                        "start_timeout" => self.res.start_timeout = t,
                        "stop_timeout" => self.res.stop_timeout = t,
                        _ => self.res.monitor_timeout = t,
                    }
                }
            }
            "monitor_interval" => {
                if let Some(t) = self.time(line, d, args, Duration::ZERO, HOUR) {
                    self.res.monitor_interval = t;
                }
            }
            "stop_retry_interval" => {
                if let Some(t) = self.time(line, d, args, MS, Duration::from_secs(600)) {
                    self.res.stop_retry_interval = t;
                }
            }
            "stop_retries" => {
                if let Some(v) = self.one(line, d, args, "a number from 0 to 1000") {
                    if let Some(n) = self.int(line, d, v, 0u32, 1000) {
                        self.res.stop_retries = n;
                    }
                }
            }
            "on_stop_failure" => {
                if let Some(v) = self.one(line, d, args, "reboot or block") {
                    match v {
                        "reboot" => self.res.on_stop_failure = StopFailure::Reboot,
                        "block" => self.res.on_stop_failure = StopFailure::Block,
                        _ => self.err(
                            line,
                            format!("`on_stop_failure {v}`: valid values are reboot, block"),
                        ),
                    }
                }
            }
            "arp_count" => {
                if let Some(v) = self.one(line, d, args, "a number from 0 to 100") {
                    if let Some(n) = self.int(line, d, v, 0u32, 100) {
                        self.res.arp_count = n;
                    }
                }
            }
            "arp_interval" => {
                if let Some(t) = self.time(line, d, args, MS, Duration::from_secs(10)) {
                    self.res.arp_interval = t;
                }
            }
            _ => {
                if let Some((_, why)) = IGNORED.iter().find(|(n, _)| *n == d) {
                    self.warn(line, format!("`{d}` is ignored: {why}"));
                } else if let Some((_, why)) = REFUSED.iter().find(|(n, _)| *n == d) {
                    self.err(line, format!("`{d}`: {why}"));
                } else {
                    self.err(
                        line,
                        format!(
                            "unknown directive `{d}`; valid directives are: {}",
                            DIRECTIVES.join(", ")
                        ),
                    );
                }
            }
        }
    }

    fn mcast(&mut self, line: usize, d: &str, args: &[&str]) {
        if args.len() != 5 {
            self.err(line, format!(
                "`{d}` takes 5 values: `{d} <dev> <group> <port> <ttl 1-255> <loop 0|1>`, e.g. `mcast eth0 239.192.0.1 694 1 0`"
            ));
            return;
        }
        let Some(ifname) = self.iface(line, d, args[0]) else {
            return;
        };
        let Some(group) = self.ip(line, d, args[1]) else {
            return;
        };
        if !group.is_multicast() || (d == "mcast6") != group.is_ipv6() {
            self.err(
                line,
                format!(
                    "`{d}`: `{group}` is not an {} multicast group ({})",
                    if d == "mcast6" { "IPv6" } else { "IPv4" },
                    if d == "mcast6" {
                        "ff00::/8"
                    } else {
                        "224.0.0.0/4; 239.192.0.0/14 recommended"
                    }
                ),
            );
            return;
        }
        let Some(port) = self.int(line, d, args[2], 1u16, 65535) else {
            return;
        };
        let Some(ttl) = self.int(line, d, args[3], 1u8, 255) else {
            return;
        };
        let Some(lp) = self.int(line, d, args[4], 0u8, 1) else {
            return;
        };
        self.media.push(MediumDef {
            medium: Medium::Mcast {
                ifname,
                group,
                port,
                ttl,
                loopback: lp == 1,
            },
            line,
        });
    }
}

/// The `node` names of `ha.cf` content, even when other lines are invalid
/// (so haresources can be checked against them in the same run).
pub fn node_names(content: &str) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for l in lex::lines(content, false) {
        let t = lex::tokens(&l.text);
        if t.first().is_some_and(|d| d.eq_ignore_ascii_case("node")) {
            for n in &t[1..] {
                let n = n.to_ascii_lowercase();
                if !v.contains(&n) {
                    v.push(n);
                }
            }
        }
    }
    v
}

/// Parses `ha.cf` content. `local_name` is this node's name (`uname -n` or
/// `--node`). The returned config has empty `groups` and `auth`.
pub fn parse(file: &Path, content: &str, local_name: &str) -> Result<Config, ConfigErrors> {
    let mut b = Builder {
        file,
        errs: ConfigErrors::default(),
        warnings: Vec::new(),
        udpport: hb_common::wire::DEFAULT_PORT,
        baud: 19200,
        keepalive: None,
        deadtime: None,
        warntime: None,
        initdead: None,
        deadping: None,
        nodes: Vec::new(),
        cluster: "linux-ha".into(),
        cluster_id: None,
        media: Vec::new(),
        auto_failback: None,
        ping: Vec::new(),
        respawn: Vec::new(),
        logfile: None,
        debugfile: None,
        logfacility: None,
        debug: 0,
        realtime: true,
        rtprio: 50,
        genmethod: GenMethod::File,
        timestamps: TimestampSource::Auto,
        control_socket: PathBuf::from("/run/hb/hb.sock"),
        state_dir: PathBuf::from("/var/lib/hb"),
        res: ResourceSettings {
            rsctmp_dir: PathBuf::from("/run/resource-agents"),
            resource_dir: PathBuf::from("/etc/ha.d/resource.d"),
            init_dir: PathBuf::from("/etc/init.d"),
            ocf_root: PathBuf::from("/usr/lib/ocf"),
            start_timeout: Duration::from_secs(60),
            stop_timeout: Duration::from_secs(60),
            monitor_timeout: Duration::from_secs(20),
            monitor_interval: Duration::from_secs(10),
            stop_retries: 10,
            stop_retry_interval: Duration::from_secs(1),
            on_stop_failure: StopFailure::Reboot,
            arp_count: 5,
            arp_interval: Duration::from_millis(200),
        },
    };
    for l in lex::lines(content, false) {
        let toks = lex::tokens(&l.text);
        let Some(first) = toks.first() else {
            b.err(
                l.number,
                format!("`{}` is not a directive line (only separators)", l.text),
            );
            continue;
        };
        let d = first.to_ascii_lowercase();
        b.directive(l.number, &d, &toks[1..], &l.text);
    }
    finish(b, local_name)
}

fn finish(mut b: Builder<'_>, local_name: &str) -> Result<Config, ConfigErrors> {
    let file = b.file;
    if b.nodes.is_empty() {
        b.err(
            0,
            "no `node` directive: list every cluster node, e.g. `node alpha beta`",
        );
    }
    if b.media.is_empty() {
        b.err(
            0,
            "no heartbeat medium: add at least one of `bcast`, `mcast`, `ucast`, `serial`",
        );
    }
    let local_lc = local_name.to_ascii_lowercase();
    let local = b.nodes.iter().position(|(n, _)| *n == local_lc);
    if local.is_none() && !b.nodes.is_empty() {
        b.err(0, format!(
            "this node's name `{local_name}` (uname -n, or --node) is not listed in a `node` directive; nodes are: {}",
            b.nodes.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
        ));
    }
    // One UDP port for all UDP media: the XDP program filters on one port.
    let mut port: Option<(u16, usize)> = None;
    for m in &b.media {
        if let Some(p) = m.medium.port() {
            match port {
                None => port = Some((p, m.line)),
                Some((q, ql)) if q != p => {
                    let (line, msg) = (m.line, format!(
                        "`{}` uses UDP port {p} but line {ql} uses {q}: all UDP media must share one port (the XDP fast path filters on it)",
                        m.medium.describe()
                    ));
                    b.errs.push(file, line, msg);
                    break;
                }
                _ => {}
            }
        }
    }

    let keepalive = b.keepalive.map(|k| k.0).unwrap_or(Duration::from_secs(1));
    let (deadtime, dead_line) = b.deadtime.unwrap_or((Duration::from_secs(30), 0));
    if deadtime <= 2 * keepalive {
        b.err(dead_line, format!(
            "deadtime ({deadtime:?}) must be more than twice keepalive ({keepalive:?}), or one lost heartbeat kills a node"
        ));
    }
    let warntime = match b.warntime {
        Some((w, line)) => {
            if w >= deadtime {
                b.err(
                    line,
                    format!("warntime ({w:?}) must be less than deadtime ({deadtime:?})"),
                );
            } else if w <= keepalive {
                b.warn(line, format!("warntime ({w:?}) <= keepalive ({keepalive:?}): every heartbeat will be reported late"));
            }
            w
        }
        None => deadtime / 2,
    };
    let initdead = match b.initdead {
        Some((i, line)) => {
            if i < deadtime {
                b.err(
                    line,
                    format!("initdead ({i:?}) must be at least deadtime ({deadtime:?})"),
                );
            } else if i < Duration::from_secs(10) {
                b.warn(
                    line,
                    format!(
                        "initdead ({i:?}) is under 10s: a peer booting slowly may be declared dead"
                    ),
                );
            }
            i
        }
        // Heartbeat's defaults (config.c).
        None if deadtime > Duration::from_secs(10) => deadtime,
        None if deadtime < Duration::from_secs(6) => Duration::from_secs(12).max(deadtime),
        None => 2 * deadtime,
    };
    let auto_failback = match b.auto_failback {
        Some(a) => a,
        None => {
            b.warn(0, "`auto_failback` not set: defaulting to `on` (Heartbeat's legacy default); set it explicitly");
            AutoFailback::On
        }
    };
    if b.errs.is_empty() {
        let mut names: Vec<&str> = b.nodes.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        let cluster_id = b.cluster_id.unwrap_or_else(|| {
            hb_common::cluster_id(b.cluster.as_bytes(), names.iter().map(|n| n.as_bytes()))
        });
        let mut ids: Vec<(u32, &str)> = b
            .nodes
            .iter()
            .map(|(n, _)| (hb_common::node_id(n.as_bytes()), n.as_str()))
            .collect();
        ids.sort_unstable();
        let collision = ids
            .windows(2)
            .find(|w| w[0].0 == w[1].0)
            .map(|w| (w[0].1.to_string(), w[1].1.to_string()));
        if let Some((x, y)) = collision {
            b.err(
                0,
                format!("node names `{x}` and `{y}` hash to the same node id; rename one"),
            );
        }
        let (errs, warnings) = (std::mem::take(&mut b.errs), std::mem::take(&mut b.warnings));
        return errs.into_result(Config {
            dir: PathBuf::new(),
            cluster_name: b.cluster,
            cluster_id,
            nodes: b.nodes.into_iter().map(|(n, _)| n).collect(),
            local: local.unwrap_or(0),
            timing: Timing {
                keepalive,
                deadtime,
                warntime,
                initdead,
            },
            udpport: b.udpport,
            media: b.media,
            auto_failback,
            ping: b.ping,
            deadping: b.deadping.unwrap_or(deadtime),
            respawn: b.respawn,
            logfile: b.logfile,
            debugfile: b.debugfile,
            logfacility: b.logfacility,
            debug: b.debug,
            realtime: b.realtime,
            rtprio: b.rtprio,
            genmethod: b.genmethod,
            timestamps: b.timestamps,
            control_socket: b.control_socket,
            state_dir: b.state_dir,
            resources: b.res,
            groups: Vec::new(),
            auth: Default::default(),
            digest: 0,
            warnings,
        });
    }
    Err(b.errs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(src: &str) -> Config {
        parse(Path::new("ha.cf"), src, "alpha").unwrap_or_else(|e| panic!("{e}"))
    }

    fn parse_err(src: &str) -> String {
        parse(Path::new("ha.cf"), src, "alpha")
            .unwrap_err()
            .to_string()
    }

    const MIN: &str = "node alpha beta\nbcast eth0\nauto_failback on\n";

    #[test]
    fn heartbeat_defaults() {
        let c = parse_ok(MIN);
        assert_eq!(c.timing.keepalive, Duration::from_secs(1));
        assert_eq!(c.timing.deadtime, Duration::from_secs(30));
        assert_eq!(c.timing.warntime, Duration::from_secs(15));
        assert_eq!(c.timing.initdead, Duration::from_secs(30));
        assert_eq!(c.udpport, 694);
        assert_eq!(c.nodes, vec!["alpha", "beta"]);
        assert_eq!(c.local, 0);
        assert_eq!(c.auto_failback, AutoFailback::On);
        assert_eq!(c.timestamps, TimestampSource::Auto);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn full_heartbeat_sample() {
        let src = "\
# sample from Heartbeat's doc/ha.cf
debugfile /var/log/ha-debug
logfile /var/log/ha-log
logfacility local0
keepalive 10ms
deadtime 100ms
warntime 50ms
initdead 1
udpport 695
baud 115200
serial /dev/ttyS0 /dev/ttyS1
bcast eth0 eth1
mcast eth0 239.192.0.1 695 1 0
mcast6 eth0 ff12::1 695 1 1
ucast eth1 10.0.0.2
ucast6 eth1 fd00::2
auto_failback off
node Alpha
node beta, gamma
ping 10.0.0.254
ping_group routers 10.0.0.1 10.0.0.2
respawn hacluster /usr/lib/heartbeat/ipfail -v
cluster prod
hbgenmethod time
crm off
";
        let c = parse_ok(src);
        assert_eq!(
            c.timing,
            Timing {
                keepalive: Duration::from_millis(10),
                deadtime: Duration::from_millis(100),
                warntime: Duration::from_millis(50),
                initdead: Duration::from_secs(1),
            }
        );
        assert_eq!(c.nodes, vec!["alpha", "beta", "gamma"]);
        assert_eq!(c.media.len(), 8);
        assert_eq!(
            c.media[0].medium,
            Medium::Serial {
                device: "/dev/ttyS0".into(),
                baud: 115200
            }
        );
        assert_eq!(
            c.media[2].medium,
            Medium::Bcast {
                ifname: "eth0".into(),
                port: 695
            }
        );
        assert!(
            matches!(&c.media[5].medium, Medium::Mcast { group, loopback: true, .. } if group.is_ipv6())
        );
        assert_eq!(c.media[7].line, 16);
        assert_eq!(c.udp_port(), 695);
        assert_eq!(c.udp_interfaces(), vec!["eth0", "eth1"]);
        assert_eq!(c.auto_failback, AutoFailback::Off);
        assert_eq!(c.ping.len(), 2);
        assert_eq!(c.ping[1].addrs.len(), 2);
        assert_eq!(c.respawn[0].argv, vec!["/usr/lib/heartbeat/ipfail", "-v"]);
        assert_eq!(c.genmethod, GenMethod::Time);
        assert_eq!(c.logfacility.as_deref(), Some("local0"));
        assert_eq!(
            c.warnings.len(),
            1,
            "initdead < 10s warns: {:?}",
            c.warnings
        );
        // cluster id depends on name and members, not on order or case.
        let c2 = parse_ok(&src.replace("node Alpha\nnode beta, gamma", "node gamma beta ALPHA"));
        assert_eq!(c.cluster_id, c2.cluster_id);
        let c3 = parse_ok(&src.replace("cluster prod", "cluster test"));
        assert_ne!(c.cluster_id, c3.cluster_id);
    }

    #[test]
    fn errors_name_line_and_valid_range() {
        let cases: &[(&str, &str)] = &[
            (
                "frobnicate 1\n",
                "ha.cf:1: unknown directive `frobnicate`; valid directives are: keepalive",
            ),
            (
                "keepalive 2min\n",
                "ha.cf:1: `keepalive`: `2min` is not a time",
            ),
            (
                "keepalive 0\n",
                "ha.cf:1: `keepalive 0` is out of range: valid is 1ms to 60s",
            ),
            (
                "udpport 70000\n",
                "ha.cf:1: `udpport`: `70000` is not a number from 1 to 65535",
            ),
            ("baud 1234\n", "ha.cf:1: `baud 1234`: valid speeds are"),
            (
                "mcast eth0 10.0.0.1 694 1 0\n",
                "ha.cf:1: `mcast`: `10.0.0.1` is not an IPv4 multicast group",
            ),
            (
                "mcast eth0 239.0.0.1 694 0 0\n",
                "ha.cf:1: `mcast`: `0` is not a number from 1 to 255",
            ),
            ("mcast eth0 239.0.0.1\n", "ha.cf:1: `mcast` takes 5 values"),
            (
                "ucast eth0\n",
                "ha.cf:1: `ucast` takes an interface and a peer address",
            ),
            (
                "ucast eth0 nothost\n",
                "ha.cf:1: `ucast`: `nothost` is not an IP address",
            ),
            (
                "stonith baytech /etc/ha.d/conf\n",
                "ha.cf:1: `stonith`: hb has no STONITH support",
            ),
            (
                "crm yes\n",
                "ha.cf:1: `crm yes`: hb runs haresources (v1) clusters only",
            ),
            (
                "auto_failback maybe\n",
                "ha.cf:1: `auto_failback maybe`: valid values are on, off, legacy",
            ),
            (
                "deadtime 2\nkeepalive 1\n",
                "ha.cf:1: deadtime (2s) must be more than twice keepalive (1s)",
            ),
            (
                "warntime 40\n",
                "ha.cf:1: warntime (40s) must be less than deadtime (30s)",
            ),
            (
                "initdead 5\n",
                "ha.cf:1: initdead (5s) must be at least deadtime (30s)",
            ),
            (
                "node alpha\n",
                "ha.cf:2: node `alpha` is listed twice (first on line 1)",
            ),
            (
                "bcast eth0/1\n",
                "ha.cf:1: `bcast`: `eth0/1` is not a valid interface name",
            ),
            (
                "ucast eth0 10.0.0.2\nudpport 700\n",
                "ha.cf:4: `bcast eth0` uses UDP port 700 but line 1 uses 694",
            ),
            (
                "timestamps fast\n",
                "`timestamps fast`: valid values are auto, xdp, kernel, userspace",
            ),
            (
                "on_stop_failure explode\n",
                "valid values are reboot, block",
            ),
        ];
        for (extra, want) in cases {
            // Put the line under test first so it is line 1.
            let src = format!("{extra}{MIN}");
            let got = parse_err(&src);
            assert!(
                got.contains(want),
                "for {extra:?}:\n got: {got}\nwant: {want}"
            );
        }
    }

    #[test]
    fn missing_essentials_are_reported_together() {
        let got = parse_err("keepalive 1\n");
        assert!(got.contains("no `node` directive"), "{got}");
        assert!(got.contains("no heartbeat medium"), "{got}");
        let got = parse(Path::new("ha.cf"), MIN, "delta")
            .unwrap_err()
            .to_string();
        assert!(got.contains("this node's name `delta`"), "{got}");
        assert!(got.contains("alpha, beta"), "{got}");
    }

    #[test]
    fn warnings_for_obsolete_and_ignored() {
        let c = parse_ok("nice_failback on\nhopfudge 2\nnode alpha beta\nbcast eth0\n");
        assert_eq!(c.auto_failback, AutoFailback::Off);
        let w: Vec<String> = c.warnings.iter().map(|w| w.to_string()).collect();
        assert!(
            w[0].contains("ha.cf:1: `nice_failback` is obsolete: use `auto_failback off`"),
            "{w:?}"
        );
        assert!(w[1].contains("ha.cf:2: `hopfudge` is ignored"), "{w:?}");
    }

    #[test]
    fn initdead_defaults_follow_heartbeat() {
        for (dead, want) in [
            ("5", 12_000),
            ("8", 16_000),
            ("20", 20_000),
            ("300ms", 12_000),
        ] {
            let c = parse_ok(&format!("keepalive 100ms\ndeadtime {dead}\n{MIN}"));
            assert_eq!(
                c.timing.initdead,
                Duration::from_millis(want),
                "deadtime {dead}"
            );
        }
    }
}
