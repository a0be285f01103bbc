//! What `hb status` shows: the report the engine builds (serialised as JSON
//! for `--json`) and its human rendering. Also the per-heartbeat trace event
//! of `hb trace`.

use std::{collections::BTreeMap, fmt::Write};

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LinkStatus {
    pub medium: String,
    pub up: bool,
    pub heartbeats: u64,
    pub last_heard_ms_ago: Option<f64>,
    pub last_gap_ms: Option<f64>,
    /// Heartbeats the XDP program saw on this link (before MAC checks).
    pub kernel_heartbeats: Option<u64>,
    pub kernel_max_gap_ms: Option<f64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NodeStatus {
    pub name: String,
    pub local: bool,
    /// init / up / dead
    pub state: String,
    /// Status announced on the wire: init / up / shutdown.
    pub announced: Option<String>,
    pub generation: Option<u64>,
    pub last_heard_ms_ago: Option<f64>,
    pub last_gap_ms: Option<f64>,
    pub max_gap_ms: Option<f64>,
    pub p99_gap_ms: Option<f64>,
    pub late_gaps: u64,
    /// Times this node was declared dead since the daemon started.
    pub deaths: u64,
    pub heartbeats: u64,
    pub same_config: bool,
    pub held: Vec<usize>,
    pub standby: Vec<usize>,
    pub failed: Vec<usize>,
    pub ping: Option<(u16, u16)>,
    pub links: Vec<LinkStatus>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct GroupStatus {
    pub index: usize,
    pub preferred: String,
    pub resources: Vec<String>,
    /// Phase on this node.
    pub phase: String,
    pub desired: Option<String>,
    pub holders: Vec<String>,
    pub failed_here: Option<String>,
    pub last_error: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TimestampStatus {
    /// xdp / kernel / userspace
    pub source: String,
    pub xdp_interfaces: Vec<(String, String)>,
    pub fallback_reason: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StatusReport {
    pub node: String,
    pub cluster: String,
    pub cluster_id: String,
    pub generation: u64,
    pub uptime_s: f64,
    pub status: String,
    pub settled: bool,
    pub auto_failback: String,
    pub keepalive_ms: f64,
    pub warntime_ms: f64,
    pub deadtime_ms: f64,
    pub initdead_ms: f64,
    pub timestamps: TimestampStatus,
    pub nodes: Vec<NodeStatus>,
    pub groups: Vec<GroupStatus>,
    pub counters: BTreeMap<String, u64>,
    pub xdp_counters: BTreeMap<String, u64>,
    pub sender_sent: u64,
    pub sender_errors: u64,
    pub sender_max_late_ms: f64,
    pub sender_realtime: bool,
}

/// One accepted heartbeat, as streamed by `hb trace`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TraceEvent {
    pub node: String,
    pub link: usize,
    pub seq: u64,
    pub generation: u64,
    /// Arrival time used for membership (CLOCK_MONOTONIC ns).
    pub arrival_ns: u64,
    /// Where the arrival time came from: xdp / kernel / userspace.
    pub source: String,
    /// When the daemon processed it (CLOCK_MONOTONIC ns).
    pub processed_ns: u64,
    /// Gap since the previous heartbeat of this node (ns), if any.
    pub gap_ns: Option<u64>,
    /// processed - arrival: how long the heartbeat waited for userspace.
    pub delay_ns: u64,
    /// Kernel socket timestamp converted to CLOCK_MONOTONIC, when present.
    pub kernel_ns: Option<u64>,
}

fn ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |x| format!("{x:.1}ms"))
}

fn list(v: &[usize]) -> String {
    if v.is_empty() {
        "-".into()
    } else {
        v.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl StatusReport {
    /// The human rendering of `hb status`.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "node {} ({}) in cluster {} [{}], generation {}, up {:.0}s, auto_failback {}",
            self.node,
            self.status,
            self.cluster,
            self.cluster_id,
            self.generation,
            self.uptime_s,
            self.auto_failback
        );
        let _ = writeln!(
            o,
            "timing: keepalive {:.1}ms warntime {:.1}ms deadtime {:.1}ms initdead {:.1}ms",
            self.keepalive_ms, self.warntime_ms, self.deadtime_ms, self.initdead_ms
        );
        let ts = &self.timestamps;
        let xdp: Vec<String> = ts
            .xdp_interfaces
            .iter()
            .map(|(i, m)| format!("{i}: {m}"))
            .collect();
        let _ = writeln!(
            o,
            "arrival timestamps: {}{}{}",
            ts.source,
            if xdp.is_empty() {
                String::new()
            } else {
                format!(" ({})", xdp.join(", "))
            },
            ts.fallback_reason
                .as_ref()
                .map_or(String::new(), |r| format!(" - XDP unavailable: {r}"))
        );
        let _ = writeln!(o, "\nNODES");
        let _ = writeln!(
            o,
            "  {:<16} {:<6} {:>10} {:>10} {:>10} {:>10}  {:<8} {:<8} {:<8}",
            "name", "state", "last", "last gap", "max gap", "p99 gap", "holds", "standby", "failed"
        );
        for n in &self.nodes {
            let name = if n.local {
                format!("{} *", n.name)
            } else {
                n.name.clone()
            };
            let state = if n.same_config || n.local {
                n.state.clone()
            } else {
                format!("{}!", n.state)
            };
            let _ = writeln!(
                o,
                "  {:<16} {:<6} {:>10} {:>10} {:>10} {:>10} {:>5} {:>6}  {:<8} {:<8} {:<8}",
                name,
                state,
                ms(n.last_heard_ms_ago),
                ms(n.last_gap_ms),
                ms(n.max_gap_ms),
                ms(n.p99_gap_ms),
                n.late_gaps,
                n.deaths,
                list(&n.held),
                list(&n.standby),
                list(&n.failed)
            );
            for l in &n.links {
                let kernel = match (l.kernel_heartbeats, l.kernel_max_gap_ms) {
                    (Some(c), g) => format!("  xdp: {c} seen, max gap {}", ms(g)),
                    _ => String::new(),
                };
                let _ = writeln!(
                    o,
                    "      link {:<28} {:<4} {} heartbeats, last {}{kernel}",
                    l.medium,
                    if l.up { "up" } else { "DEAD" },
                    l.heartbeats,
                    ms(l.last_heard_ms_ago)
                );
            }
            if !n.same_config && !n.local {
                let _ = writeln!(
                    o,
                    "      ! different ha.cf node list or haresources: not given resources"
                );
            }
        }
        let _ = writeln!(o, "\nRESOURCE GROUPS");
        for g in &self.groups {
            let _ = writeln!(
                o,
                "  [{}] {} (preferred {}): here {}, held by {}, should run on {}",
                g.index,
                g.resources.join(" "),
                g.preferred,
                g.phase,
                if g.holders.is_empty() {
                    "nobody".into()
                } else {
                    g.holders.join(",")
                },
                g.desired.as_deref().unwrap_or("nobody")
            );
            if let Some(f) = &g.failed_here {
                let _ = writeln!(
                    o,
                    "      failed here: {f} (`hb cleanup {}` to retry)",
                    g.index
                );
            }
        }
        let bad: Vec<String> = self
            .counters
            .iter()
            .filter(|(_, v)| **v > 0)
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let xdp: Vec<String> = self
            .xdp_counters
            .iter()
            .filter(|(_, v)| **v > 0)
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let _ = writeln!(o, "\nCOUNTERS");
        let _ = writeln!(
            o,
            "  daemon: {}",
            if bad.is_empty() {
                "-".into()
            } else {
                bad.join(" ")
            }
        );
        if !self.xdp_counters.is_empty() {
            let _ = writeln!(
                o,
                "  xdp:    {}",
                if xdp.is_empty() {
                    "-".into()
                } else {
                    xdp.join(" ")
                }
            );
        }
        let _ = writeln!(
            o,
            "  sender: {} sent, {} errors, worst wake-up delay {:.2}ms, {}",
            self.sender_sent,
            self.sender_errors,
            self.sender_max_late_ms,
            if self.sender_realtime {
                "SCHED_FIFO"
            } else {
                "not real-time"
            }
        );
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_mentions_the_essentials() {
        let r = StatusReport {
            node: "alpha".into(),
            status: "up".into(),
            cluster: "prod".into(),
            timestamps: TimestampStatus {
                source: "xdp".into(),
                xdp_interfaces: vec![("eth0".into(), "driver".into())],
                fallback_reason: None,
            },
            nodes: vec![NodeStatus {
                name: "beta".into(),
                state: "up".into(),
                same_config: true,
                held: vec![1],
                links: vec![LinkStatus {
                    medium: "bcast eth0".into(),
                    up: true,
                    heartbeats: 5,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            groups: vec![GroupStatus {
                index: 0,
                preferred: "alpha".into(),
                resources: vec!["10.0.0.10".into()],
                phase: "running".into(),
                desired: Some("alpha".into()),
                holders: vec!["alpha".into()],
                failed_here: None,
                last_error: None,
            }],
            counters: [("bad_mac".to_string(), 3)].into_iter().collect(),
            ..Default::default()
        };
        let s = r.render();
        for want in [
            "node alpha (up)",
            "arrival timestamps: xdp (eth0: driver)",
            "beta",
            "link bcast eth0",
            "[0] 10.0.0.10 (preferred alpha): here running",
            "bad_mac=3",
        ] {
            assert!(s.contains(want), "missing {want:?} in\n{s}");
        }
    }
}
