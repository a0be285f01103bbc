//! One node's whole decision logic, pure: membership + resource manager +
//! ping reachability, fed with timestamped inputs, producing actions.
//!
//! The daemon (`engine`) wraps a [`NodeCore`] with sockets, XDP, scripts and
//! timers; the simulator (`tests/simulation.rs`) runs several of them on a
//! virtual clock and network. Both use exactly this code.

use std::{collections::VecDeque, time::Duration};

use hb_common::wire::Status;

use crate::{
    config::{AutoFailback, StopFailure, Timing},
    groupset::GroupSet,
    membership::{Arrival, DeadReason, Event, Membership, NodeState},
    proto::{Payload, ReplayVerdict},
    resources::{
        manager::{Action, ManagerSettings, OpOutcome, OpRequest, ResourceManager},
        policy::{ClusterView, NodeView},
    },
    time::{fmt_ms, Mono},
};

/// Everything the core needs from the configuration.
#[derive(Clone, Debug)]
pub struct CoreConfig {
    pub nodes: Vec<String>,
    pub local: usize,
    pub links: usize,
    pub timing: Timing,
    pub mode: AutoFailback,
    /// (preferred node index, resource count) per group.
    pub groups: Vec<(usize, usize)>,
    pub digest: u32,
    /// Number of ping targets (0 = ipfail logic off).
    pub ping_targets: u16,
    pub monitor_interval: Duration,
    pub stop_retries: u32,
    pub stop_retry_interval: Duration,
    pub on_stop_failure: StopFailure,
}

impl CoreConfig {
    pub fn from_config(c: &crate::config::Config) -> Self {
        CoreConfig {
            nodes: c.nodes.clone(),
            local: c.local,
            links: c.media.len(),
            timing: c.timing,
            mode: c.auto_failback,
            groups: c
                .groups
                .iter()
                .map(|g| {
                    (
                        c.node_index(&g.preferred)
                            .expect("validated preferred node"),
                        g.resources.len(),
                    )
                })
                .collect(),
            digest: c.digest,
            ping_targets: c.ping.len() as u16,
            monitor_interval: c.resources.monitor_interval,
            stop_retries: c.resources.stop_retries,
            stop_retry_interval: c.resources.stop_retry_interval,
            on_stop_failure: c.resources.on_stop_failure,
        }
    }
}

/// What the I/O layer must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CoreAction {
    /// Run a resource operation and report it with `handle_op_result`.
    Run(OpRequest),
    /// A resource could not be stopped: reboot (Heartbeat's escalation).
    Escalate {
        group: usize,
        resource: usize,
        reason: String,
    },
    /// Send a heartbeat now (state changed) instead of at the next tick.
    SendNow,
    /// Re-announce the addresses of a group (gratuitous ARP / NA).
    Refresh { group: usize },
    /// Graceful shutdown finished: send the shutdown notice and exit.
    Exit,
}

pub struct NodeCore {
    cfg: CoreConfig,
    membership: Membership,
    resources: ResourceManager,
    ping_reachable: u16,
    shutting_down: bool,
    exited: bool,
    actions: VecDeque<CoreAction>,
}

impl NodeCore {
    pub fn new(cfg: CoreConfig, now: Mono) -> Self {
        let membership = Membership::new(cfg.timing, &cfg.nodes, cfg.local, cfg.links, now);
        let resources = ResourceManager::new(
            ManagerSettings {
                local: cfg.local,
                mode: cfg.mode,
                groups: cfg.groups.clone(),
                monitor_interval: cfg.monitor_interval,
                stop_retries: cfg.stop_retries,
                stop_retry_interval: cfg.stop_retry_interval,
                on_stop_failure: cfg.on_stop_failure,
                takeover_ttl: cfg.timing.deadtime * 2 + cfg.timing.keepalive * 10,
            },
            cfg.nodes.len(),
            now,
        );
        let mut core = NodeCore {
            ping_reachable: cfg.ping_targets,
            cfg,
            membership,
            resources,
            shutting_down: false,
            exited: false,
            actions: VecDeque::new(),
        };
        core.process(now);
        core
    }

    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    pub fn resources(&self) -> &ResourceManager {
        &self.resources
    }

    pub fn poll_action(&mut self) -> Option<CoreAction> {
        self.actions.pop_front()
    }

    /// Our status on the wire.
    pub fn status(&self) -> Status {
        if self.exited {
            Status::Shutdown
        } else if self.membership.is_settled() && self.resources.probed() {
            Status::Up
        } else {
            Status::Init
        }
    }

    /// The payload of our next heartbeat.
    pub fn payload(&self) -> Payload {
        Payload {
            node_name: self.cfg.nodes[self.cfg.local].clone(),
            digest: self.cfg.digest,
            held: self.resources.held(),
            standby: self.resources.standby().clone(),
            failed: self.resources.failed(),
            ping: (self.cfg.ping_targets > 0)
                .then_some((self.ping_reachable, self.cfg.ping_targets)),
            takeover: self.resources.takeover_request(),
            timing: Some((
                self.cfg.timing.keepalive.as_micros().min(u32::MAX as u128) as u32,
                self.cfg.timing.deadtime.as_millis().min(u32::MAX as u128) as u32,
            )),
        }
    }

    pub fn handle_heartbeat(&mut self, now: Mono, a: Arrival) -> ReplayVerdict {
        let node = a.node;
        let generation = a.generation;
        let takeover = a.payload.takeover.clone();
        let digest = a.payload.digest;
        let prev_digest = self
            .membership
            .peers()
            .get(node)
            .and_then(|p| p.payload.as_ref())
            .map(|p| p.digest);
        let v = self.membership.handle_heartbeat(now, a);
        if let ReplayVerdict::Fresh { .. } = v {
            // Said when a peer's configuration changes, not on every heartbeat.
            if digest != self.cfg.digest && prev_digest != Some(digest) {
                log::error!(
                    "node {} runs a different configuration (digest {digest:#010x}, ours {:#010x}): ha.cf node lists and haresources must be identical on every node; it will not be given resources",
                    self.cfg.nodes[node], self.cfg.digest
                );
            }
            if let Some((epoch, set)) = takeover {
                if self.membership.alive(node) {
                    self.resources
                        .handle_takeover_request(node, generation, epoch, &set);
                }
            }
            self.process(now);
        }
        v
    }

    pub fn handle_timeout(&mut self, now: Mono) {
        self.membership.handle_timeout(now);
        self.resources.handle_timeout(now);
        self.process(now);
    }

    pub fn next_deadline(&self) -> Option<Mono> {
        [
            self.membership.next_deadline(),
            self.resources.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn handle_op_result(&mut self, now: Mono, group: usize, outcome: OpOutcome) {
        let was_up = self.status() == Status::Up;
        self.resources.handle_result(now, group, outcome);
        if !was_up && self.status() == Status::Up {
            self.actions.push_back(CoreAction::SendNow);
        }
        self.process(now);
    }

    /// Reachable ping targets changed.
    pub fn set_ping_reachable(&mut self, now: Mono, n: u16) {
        if n != self.ping_reachable {
            log::info!("ping targets reachable: {n} of {}", self.cfg.ping_targets);
            self.ping_reachable = n;
            self.actions.push_back(CoreAction::SendNow);
            self.process(now);
        }
    }

    /// Group sets for `hb standby/takeover all|local|foreign`.
    pub fn group_set(&self, which: &str) -> Option<GroupSet> {
        let local = self.cfg.local;
        let pick = |f: &dyn Fn(usize) -> bool| {
            GroupSet::from_indices(
                self.cfg
                    .groups
                    .iter()
                    .enumerate()
                    .filter(|(_, g)| f(g.0))
                    .map(|(i, _)| i),
            )
        };
        match which {
            "all" => Some(pick(&|_| true)),
            "local" => Some(pick(&|p| p == local)),
            "foreign" | "failback" => Some(pick(&|p| p != local)),
            _ => None,
        }
    }

    pub fn standby(&mut self, now: Mono, set: &GroupSet) {
        self.resources.standby_groups(set);
        self.process(now);
    }

    pub fn takeover(&mut self, now: Mono, set: &GroupSet) {
        self.resources.takeover(now, set);
        self.process(now);
    }

    pub fn cleanup(&mut self, now: Mono, set: &GroupSet) {
        self.resources.cleanup(now, set);
        self.process(now);
    }

    /// Graceful stop: release every group, then [`CoreAction::Exit`].
    pub fn shutdown(&mut self, now: Mono) {
        if !self.shutting_down {
            log::info!("shutting down: releasing all resource groups");
            self.shutting_down = true;
            self.resources.shutdown(now);
            self.process(now);
        }
    }

    /// The view every node computes from heartbeats.
    fn view(&self, now: Mono) -> ClusterView {
        let local = self.cfg.local;
        let nodes = (0..self.cfg.nodes.len())
            .map(|i| {
                if i == local {
                    return NodeView {
                        alive: true,
                        // The manager also withdraws us while shutting down.
                        participating: self.status() == Status::Up,
                        ping: (self.cfg.ping_targets > 0).then_some(self.ping_reachable),
                        ..Default::default()
                    };
                }
                let p = self.membership.peer(i);
                let alive = p.state == NodeState::Up;
                let same_config = p
                    .payload
                    .as_ref()
                    .is_some_and(|pl| pl.digest == self.cfg.digest);
                match &p.payload {
                    Some(pl) if alive => NodeView {
                        alive,
                        participating: p.status == Some(Status::Up) && same_config,
                        joining: p.status == Some(Status::Init)
                            && same_config
                            && now.since(p.since) < self.cfg.timing.initdead,
                        held: pl.held.clone(),
                        standby: pl.standby.clone(),
                        failed: pl.failed.clone(),
                        ping: pl.ping.map(|(r, _)| r),
                    },
                    _ => NodeView::default(),
                }
            })
            .collect();
        ClusterView { nodes }
    }

    fn process(&mut self, now: Mono) {
        while let Some(ev) = self.membership.poll_event() {
            let name = |i: usize| self.cfg.nodes[i].clone();
            match ev {
                Event::NodeUp {
                    node,
                    after_partition: true,
                } => {
                    log::warn!("node {} is back (returning after partition)", name(node))
                }
                Event::NodeUp { node, .. } => log::info!("node {} is up", name(node)),
                Event::NodeDead {
                    node,
                    silence,
                    reason,
                } => match reason {
                    DeadReason::Timeout => log::warn!(
                        "node {} is dead: no heartbeat for {} (deadtime {})",
                        name(node),
                        fmt_ms(silence),
                        fmt_ms(self.cfg.timing.deadtime)
                    ),
                    DeadReason::NeverHeard => log::warn!(
                        "node {} is dead: not heard within initdead ({})",
                        name(node),
                        fmt_ms(self.cfg.timing.initdead)
                    ),
                    DeadReason::Shutdown => log::info!("node {} shut down", name(node)),
                    DeadReason::LateHeartbeat => log::error!(
                        "node {} was dead: a heartbeat arrived {} after the previous one (deadtime {})",
                        name(node),
                        fmt_ms(silence),
                        fmt_ms(self.cfg.timing.deadtime)
                    ),
                },
                Event::LinkUp { node, link } => log::info!("link {}:{link} up", name(node)),
                Event::LinkDead {
                    node,
                    link,
                    silence,
                } => {
                    log::warn!(
                        "link {}:{link} dead: silent for {}",
                        name(node),
                        fmt_ms(silence)
                    )
                }
                Event::Late { node, gap } => log::warn!(
                    "late heartbeat from node {}: gap {} exceeds warntime {}",
                    name(node),
                    fmt_ms(gap),
                    fmt_ms(self.cfg.timing.warntime)
                ),
                Event::Restarted { node, generation } => {
                    log::info!("node {} restarted (generation {generation})", name(node))
                }
                Event::Settled => {
                    log::info!("cluster membership settled");
                    self.actions.push_back(CoreAction::SendNow);
                }
            }
        }
        let view = self.view(now);
        self.resources.reconcile(now, view);
        while let Some(a) = self.resources.poll_action() {
            self.actions.push_back(match a {
                Action::Run(r) => CoreAction::Run(r),
                Action::Escalate {
                    group,
                    resource,
                    reason,
                } => CoreAction::Escalate {
                    group,
                    resource,
                    reason,
                },
                Action::Announce => CoreAction::SendNow,
                Action::Refresh { group } => CoreAction::Refresh { group },
            });
        }
        if self.shutting_down && !self.exited && self.resources.is_quiescent() {
            self.exited = true;
            self.actions.push_back(CoreAction::Exit);
        }
    }
}
