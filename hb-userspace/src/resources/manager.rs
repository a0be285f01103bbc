//! The local resource state machine: pure, driven by the cluster view, by
//! operation results and by time.
//!
//! Per group (haresources line):
//! ```text
//!  Probing(i): at daemon start, monitor every resource (a daemon killed
//!  with SIGKILL leaves addresses configured); anything found running is
//!  stopped before this node participates, then Stopped.
//!  Stopped --(we are the desired holder, nobody else holds it)--> Starting(0)
//!  Starting(i) --ok--> Starting(i+1) ... --ok(last)--> Running
//!  Starting(i) --fail--> Stopping(i+1 resources, then mark failed)   [give up group]
//!  Running --monitor due--> Monitoring(0) --ok...--> Running
//!  Monitoring(i) --not running/fail--> Stopping(all, then mark failed) [failover]
//!  Running --(someone else should hold it / shutdown)--> Stopping(all)
//!  Stopping(k) stops resource k-1 .. 0 (right to left); a failed stop is
//!  retried `stop_retries` times, `stop_retry_interval` apart, then escalated:
//!  `reboot` (Heartbeat's behaviour) or `block` (keep claiming the group so
//!  nobody starts it twice; `hb cleanup` retries).
//! ```
//! One operation per group is in flight at a time; different groups proceed
//! in parallel. A group counts as *held* (announced to peers) in every phase
//! but `Stopped`, so peers never start a group that is still being stopped
//! here.

use std::{collections::VecDeque, time::Duration};

use super::policy::{self, ClusterView};
use crate::{
    config::{AutoFailback, StopFailure},
    groupset::GroupSet,
    time::Mono,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OpKind {
    Start,
    Stop,
    Monitor,
}

/// An operation the runner must execute, then report with
/// [`ResourceManager::handle_result`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpRequest {
    pub group: usize,
    pub resource: usize,
    pub op: OpKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpOutcome {
    Success,
    /// Monitor: cleanly not running.
    NotRunning,
    Failed(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Run(OpRequest),
    /// A stop failed after every retry and `on_stop_failure reboot`.
    Escalate {
        group: usize,
        resource: usize,
        reason: String,
    },
    /// Held/standby/failed/takeover changed: announce now.
    Announce,
    /// We keep a group another node also held (healed split brain): refresh
    /// ARP caches for its addresses.
    Refresh {
        group: usize,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Startup probe of resource `next`; `found`: something runs already.
    Probing {
        next: usize,
        found: bool,
    },
    Stopped,
    Starting {
        next: usize,
    },
    Running,
    Monitoring {
        next: usize,
    },
    /// Stop resources `remaining-1 ..= 0`.
    Stopping {
        remaining: usize,
        attempt: u32,
    },
    /// A stop failed for good; `resource` may still be running.
    Blocked {
        resource: usize,
    },
}

impl Phase {
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Probing { .. } => "probing",
            Phase::Stopped => "stopped",
            Phase::Starting { .. } => "starting",
            Phase::Running => "running",
            Phase::Monitoring { .. } => "running",
            Phase::Stopping { .. } => "stopping",
            Phase::Blocked { .. } => "stop-failed",
        }
    }
}

impl GroupRt {
    fn is_held(&self) -> bool {
        !matches!(self.phase, Phase::Stopped | Phase::Probing { .. })
    }
}

#[derive(Clone, Debug)]
pub struct GroupRt {
    pub phase: Phase,
    pub size: usize,
    pub preferred: usize,
    /// Why this node is not eligible for the group (start/monitor failure).
    pub failed: Option<String>,
    pub last_error: Option<String>,
    pub since: Mono,
    in_flight: bool,
    /// Stopping a leftover found by the startup probe.
    cleanup: bool,
    fail_after_stop: Option<String>,
    monitor_due: Option<Mono>,
    retry_at: Option<Mono>,
    contested: bool,
}

/// Static settings of the manager.
#[derive(Clone, Debug)]
pub struct ManagerSettings {
    pub local: usize,
    pub mode: AutoFailback,
    /// (preferred node, number of resources) per group.
    pub groups: Vec<(usize, usize)>,
    pub monitor_interval: Duration,
    pub stop_retries: u32,
    pub stop_retry_interval: Duration,
    pub on_stop_failure: StopFailure,
    /// How long a takeover request stays in our heartbeats.
    pub takeover_ttl: Duration,
}

pub struct ResourceManager {
    s: ManagerSettings,
    groups: Vec<GroupRt>,
    standby: GroupSet,
    shutting_down: bool,
    epoch: u32,
    takeover: Option<(u32, GroupSet, Mono)>,
    /// Last takeover request acted on, per node: (generation, epoch).
    seen: Vec<Option<(u64, u32)>>,
    view: ClusterView,
    actions: VecDeque<Action>,
}

impl ResourceManager {
    pub fn new(s: ManagerSettings, n_nodes: usize, now: Mono) -> Self {
        let groups = s
            .groups
            .iter()
            .map(|&(preferred, size)| GroupRt {
                phase: Phase::Probing {
                    next: 0,
                    found: false,
                },
                size,
                preferred,
                failed: None,
                last_error: None,
                since: now,
                in_flight: false,
                cleanup: false,
                fail_after_stop: None,
                monitor_due: None,
                retry_at: None,
                contested: false,
            })
            .collect();
        let mut m = ResourceManager {
            s,
            groups,
            standby: GroupSet::new(),
            shutting_down: false,
            epoch: 0,
            takeover: None,
            seen: vec![None; n_nodes],
            view: ClusterView::default(),
            actions: VecDeque::new(),
        };
        for g in 0..m.groups.len() {
            if m.groups[g].size == 0 {
                m.groups[g].phase = Phase::Stopped;
            } else {
                m.run(g, 0, OpKind::Monitor);
            }
        }
        m
    }

    /// Every group's startup probe has finished and every leftover it found
    /// is stopped: we may participate.
    pub fn probed(&self) -> bool {
        !self
            .groups
            .iter()
            .any(|g| g.cleanup || matches!(g.phase, Phase::Probing { .. }))
    }

    pub fn groups(&self) -> &[GroupRt] {
        &self.groups
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Groups announced as held: every phase but Stopped and Probing.
    pub fn held(&self) -> GroupSet {
        GroupSet::from_indices(
            self.groups
                .iter()
                .enumerate()
                .filter(|(_, g)| g.is_held())
                .map(|(i, _)| i),
        )
    }

    pub fn failed(&self) -> GroupSet {
        GroupSet::from_indices(
            self.groups
                .iter()
                .enumerate()
                .filter(|(_, g)| g.failed.is_some())
                .map(|(i, _)| i),
        )
    }

    pub fn standby(&self) -> &GroupSet {
        &self.standby
    }

    pub fn takeover_request(&self) -> Option<(u32, GroupSet)> {
        self.takeover.as_ref().map(|(e, s, _)| (*e, s.clone()))
    }

    /// Desired holder of `g` in the last view.
    pub fn desired(&self, g: usize) -> Option<usize> {
        policy::desired_holder(g, self.groups[g].preferred, self.s.mode, &self.view)
    }

    /// Shut down finished: nothing held except blocked groups, nothing running.
    pub fn is_quiescent(&self) -> bool {
        self.groups
            .iter()
            .all(|g| !g.in_flight && matches!(g.phase, Phase::Stopped | Phase::Blocked { .. }))
    }

    fn set_phase(&mut self, g: usize, phase: Phase, now: Mono) {
        let was_held = self.groups[g].is_held();
        let gr = &mut self.groups[g];
        gr.phase = phase;
        gr.since = now;
        if was_held != gr.is_held() {
            self.actions.push_back(Action::Announce);
        }
    }

    fn run(&mut self, g: usize, resource: usize, op: OpKind) {
        self.groups[g].in_flight = true;
        self.actions.push_back(Action::Run(OpRequest {
            group: g,
            resource,
            op,
        }));
    }

    fn begin_stop(&mut self, g: usize, remaining: usize, now: Mono, fail_reason: Option<String>) {
        let gr = &mut self.groups[g];
        gr.monitor_due = None;
        gr.fail_after_stop = fail_reason;
        if remaining == 0 {
            self.finish_stop(g, now);
            return;
        }
        self.set_phase(
            g,
            Phase::Stopping {
                remaining,
                attempt: 0,
            },
            now,
        );
        self.run(g, remaining - 1, OpKind::Stop);
    }

    fn finish_stop(&mut self, g: usize, now: Mono) {
        self.groups[g].cleanup = false;
        if let Some(reason) = self.groups[g].fail_after_stop.take() {
            self.groups[g].failed = Some(reason);
            self.actions.push_back(Action::Announce);
        }
        self.set_phase(g, Phase::Stopped, now);
        log::info!("resource group {g} stopped");
    }

    /// Re-evaluates every group against a new cluster view. The local
    /// node's held/standby/failed sets in `view` are replaced by ours.
    pub fn reconcile(&mut self, now: Mono, mut view: ClusterView) {
        let local = self.s.local;
        if let Some(me) = view.nodes.get_mut(local) {
            me.alive = true;
            me.held = self.held();
            me.standby = self.standby.clone();
            me.failed = self.failed();
            if self.shutting_down {
                me.participating = false;
            }
        }
        let participating = view.nodes.get(local).is_some_and(|n| n.participating);
        // Built once per reconcile (not per group): the view with joining
        // nodes counted, which only gates starts.
        let joined = view.with_joining();
        self.view = view;
        for g in 0..self.groups.len() {
            let mine = !self.shutting_down && self.desired(g) == Some(local);
            let elsewhere = policy::held_elsewhere(g, local, &self.view);
            let gr = &self.groups[g];
            if gr.in_flight {
                continue;
            }
            let mine_after_joins = || {
                let v = joined.as_ref().unwrap_or(&self.view);
                policy::desired_holder(g, gr.preferred, self.s.mode, v) == Some(local)
            };
            match gr.phase {
                Phase::Stopped if mine && participating && !elsewhere && mine_after_joins() => {
                    log::info!("acquiring resource group {g} ({} resources)", gr.size);
                    self.set_phase(g, Phase::Starting { next: 0 }, now);
                    self.run(g, 0, OpKind::Start);
                }
                Phase::Running if !mine => {
                    log::info!(
                        "releasing resource group {g} (desired holder: {:?})",
                        self.desired(g)
                    );
                    let n = self.groups[g].size;
                    self.begin_stop(g, n, now, None);
                }
                Phase::Running => {
                    // Healed split brain: another node claimed it too and
                    // has now let go; we keep it and re-announce addresses.
                    if elsewhere {
                        self.groups[g].contested = true;
                    } else if std::mem::take(&mut self.groups[g].contested) {
                        self.actions.push_back(Action::Refresh { group: g });
                    }
                }
                _ => {}
            }
        }
    }

    /// Reports the outcome of the in-flight operation of `g`.
    pub fn handle_result(&mut self, now: Mono, g: usize, outcome: OpOutcome) {
        let Some(gr) = self.groups.get_mut(g) else {
            return;
        };
        if !gr.in_flight {
            return;
        }
        gr.in_flight = false;
        let n = gr.size;
        let phase = gr.phase;
        let local = self.s.local;
        let mine = !self.shutting_down && self.desired(g) == Some(local);
        match (phase, outcome) {
            (Phase::Probing { next, found }, outcome) => {
                let running = match &outcome {
                    OpOutcome::NotRunning => false,
                    OpOutcome::Success => true,
                    OpOutcome::Failed(e) => {
                        log::warn!("resource group {g}: startup probe of resource {next} failed ({e}); stopping it to be safe");
                        true
                    }
                };
                let found = found || running;
                if next + 1 < n {
                    self.groups[g].phase = Phase::Probing {
                        next: next + 1,
                        found,
                    };
                    self.run(g, next + 1, OpKind::Monitor);
                } else if found {
                    log::warn!("resource group {g} was found active at startup (left over from a previous run); stopping it before joining");
                    self.groups[g].cleanup = true;
                    self.begin_stop(g, n, now, None);
                } else {
                    self.set_phase(g, Phase::Stopped, now);
                }
            }
            (Phase::Starting { next }, OpOutcome::Success) => {
                if !mine {
                    log::info!(
                        "resource group {g} no longer wanted here while starting; rolling back"
                    );
                    self.begin_stop(g, next + 1, now, None);
                } else if next + 1 == n {
                    log::info!("resource group {g} running");
                    self.set_phase(g, Phase::Running, now);
                    self.schedule_monitor(g, now);
                } else {
                    self.set_phase(g, Phase::Starting { next: next + 1 }, now);
                    self.run(g, next + 1, OpKind::Start);
                }
            }
            (Phase::Starting { next }, bad) => {
                let reason = format!("start of resource {next} failed: {}", describe(&bad));
                log::error!(
                    "resource group {g}: {reason}; giving the group up (stopping it right to left)"
                );
                self.groups[g].last_error = Some(reason.clone());
                self.begin_stop(g, next + 1, now, Some(reason));
            }
            (Phase::Monitoring { next }, OpOutcome::Success) => {
                if !mine {
                    self.begin_stop(g, n, now, None);
                } else if next + 1 == n {
                    self.set_phase(g, Phase::Running, now);
                    self.schedule_monitor(g, now);
                } else {
                    self.groups[g].phase = Phase::Monitoring { next: next + 1 };
                    self.run(g, next + 1, OpKind::Monitor);
                }
            }
            (Phase::Monitoring { next }, bad) => {
                let reason = format!("monitor of resource {next} failed: {}", describe(&bad));
                log::error!(
                    "resource group {g}: {reason}; failing over (stopping it right to left)"
                );
                self.groups[g].last_error = Some(reason.clone());
                self.begin_stop(g, n, now, Some(reason));
            }
            (Phase::Stopping { remaining, .. }, OpOutcome::Success | OpOutcome::NotRunning) => {
                if remaining <= 1 {
                    self.finish_stop(g, now);
                } else {
                    self.set_phase(
                        g,
                        Phase::Stopping {
                            remaining: remaining - 1,
                            attempt: 0,
                        },
                        now,
                    );
                    self.run(g, remaining - 2, OpKind::Stop);
                }
            }
            (Phase::Stopping { remaining, attempt }, OpOutcome::Failed(e)) => {
                let resource = remaining - 1;
                let reason = format!("stop of resource {resource} failed: {e}");
                self.groups[g].last_error = Some(reason.clone());
                if attempt < self.s.stop_retries {
                    log::warn!(
                        "resource group {g}: {reason}; retry {} of {} in {:?}",
                        attempt + 1,
                        self.s.stop_retries,
                        self.s.stop_retry_interval
                    );
                    self.groups[g].phase = Phase::Stopping {
                        remaining,
                        attempt: attempt + 1,
                    };
                    self.groups[g].retry_at = Some(now + self.s.stop_retry_interval);
                } else {
                    self.set_phase(g, Phase::Blocked { resource }, now);
                    match self.s.on_stop_failure {
                        StopFailure::Reboot => {
                            log::error!("resource group {g}: {reason} after {} retries; rebooting so peers can take over safely", self.s.stop_retries);
                            self.actions.push_back(Action::Escalate {
                                group: g,
                                resource,
                                reason,
                            });
                        }
                        StopFailure::Block => {
                            log::error!("resource group {g}: {reason} after {} retries; group blocked here (no other node will start it) until `hb cleanup`", self.s.stop_retries);
                        }
                    }
                }
            }
            (phase, outcome) => {
                log::warn!("resource group {g}: unexpected result {outcome:?} in phase {phase:?}");
            }
        }
        let view = self.view.clone();
        self.reconcile(now, view);
    }

    fn schedule_monitor(&mut self, g: usize, now: Mono) {
        self.groups[g].monitor_due =
            (!self.s.monitor_interval.is_zero()).then(|| now + self.s.monitor_interval);
    }

    /// Fires due monitors, stop retries and expires takeover requests.
    pub fn handle_timeout(&mut self, now: Mono) {
        for g in 0..self.groups.len() {
            let gr = &self.groups[g];
            if gr.in_flight {
                continue;
            }
            match gr.phase {
                Phase::Running if gr.monitor_due.is_some_and(|t| t <= now) => {
                    self.groups[g].monitor_due = None;
                    self.groups[g].phase = Phase::Monitoring { next: 0 };
                    self.run(g, 0, OpKind::Monitor);
                }
                Phase::Stopping { remaining, .. } if gr.retry_at.is_some_and(|t| t <= now) => {
                    self.groups[g].retry_at = None;
                    self.run(g, remaining - 1, OpKind::Stop);
                }
                _ => {}
            }
        }
        if self
            .takeover
            .as_ref()
            .is_some_and(|(_, _, until)| *until <= now)
        {
            self.takeover = None;
            self.actions.push_back(Action::Announce);
        }
    }

    pub fn next_deadline(&self) -> Option<Mono> {
        self.groups
            .iter()
            .filter(|g| !g.in_flight)
            .flat_map(|g| [g.monitor_due, g.retry_at])
            .flatten()
            .chain(self.takeover.as_ref().map(|t| t.2))
            .min()
    }

    /// `hb standby`: prefer other nodes for `set`.
    pub fn standby_groups(&mut self, set: &GroupSet) {
        self.standby = self.standby.union(set);
        self.actions.push_back(Action::Announce);
    }

    /// `hb takeover`: stop preferring others for `set` and ask every other
    /// node to stand by for it.
    pub fn takeover(&mut self, now: Mono, set: &GroupSet) {
        for g in set.iter() {
            self.standby.remove(g);
        }
        self.epoch = self.epoch.wrapping_add(1);
        self.takeover = Some((self.epoch, set.clone(), now + self.s.takeover_ttl));
        self.actions.push_back(Action::Announce);
    }

    /// A peer's heartbeat carried a takeover request.
    pub fn handle_takeover_request(
        &mut self,
        node: usize,
        generation: u64,
        epoch: u32,
        set: &GroupSet,
    ) {
        if self.seen.get(node).copied().flatten() == Some((generation, epoch)) {
            return;
        }
        if let Some(s) = self.seen.get_mut(node) {
            *s = Some((generation, epoch));
        }
        log::info!("node {node} takes over groups {set:?}: standing by for them");
        self.standby_groups(set);
    }

    /// `hb cleanup`: forget failures of `set` (eligible again) and retry a
    /// blocked stop.
    pub fn cleanup(&mut self, now: Mono, set: &GroupSet) {
        let n = self.groups.len();
        for g in set.iter().filter(|g| *g < n) {
            self.groups[g].failed = None;
            self.groups[g].last_error = None;
            if let Phase::Blocked { resource } = self.groups[g].phase {
                if !self.groups[g].in_flight {
                    self.begin_stop(g, resource + 1, now, None);
                }
            }
        }
        self.actions.push_back(Action::Announce);
    }

    /// Release everything (graceful daemon stop).
    pub fn shutdown(&mut self, now: Mono) {
        self.shutting_down = true;
        let view = self.view.clone();
        self.reconcile(now, view);
    }
}

fn describe(o: &OpOutcome) -> String {
    match o {
        OpOutcome::Success => "success".into(),
        OpOutcome::NotRunning => "not running".into(),
        OpOutcome::Failed(e) => e.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::policy::NodeView;

    const MS: Duration = Duration::from_millis(1);

    fn t(ms: u64) -> Mono {
        Mono::from_nanos(ms * 1_000_000)
    }

    fn settings(groups: Vec<(usize, usize)>) -> ManagerSettings {
        ManagerSettings {
            local: 0,
            mode: AutoFailback::On,
            groups,
            monitor_interval: 1000 * MS,
            stop_retries: 2,
            stop_retry_interval: 100 * MS,
            on_stop_failure: StopFailure::Block,
            takeover_ttl: 500 * MS,
        }
    }

    fn up() -> NodeView {
        NodeView {
            alive: true,
            participating: true,
            ..Default::default()
        }
    }

    fn view2(peer: NodeView) -> ClusterView {
        ClusterView {
            nodes: vec![up(), peer],
        }
    }

    /// A manager whose startup probes found nothing running.
    fn new_probed(s: ManagerSettings, nodes: usize, now: Mono) -> ResourceManager {
        let mut m = ResourceManager::new(s, nodes, now);
        while let Some(a) = m.poll_action() {
            if let Action::Run(r) = a {
                assert_eq!(
                    r.op,
                    OpKind::Monitor,
                    "only probes before the first reconcile"
                );
                m.handle_result(now, r.group, OpOutcome::NotRunning);
            }
        }
        assert!(m.probed());
        m
    }

    #[test]
    fn startup_probe_stops_leftovers() {
        let mut m = ResourceManager::new(settings(vec![(0, 2), (1, 1)]), 2, t(0));
        assert!(!m.probed());
        assert_eq!(
            runs(&drain(&mut m)),
            vec![(0, 0, OpKind::Monitor), (1, 0, OpKind::Monitor)]
        );
        assert!(m.held().is_empty(), "probing is not holding");
        m.handle_result(t(1), 1, OpOutcome::NotRunning);
        assert_eq!(m.groups()[1].phase, Phase::Stopped);
        m.handle_result(t(1), 0, OpOutcome::NotRunning);
        assert_eq!(runs(&drain(&mut m)), vec![(0, 1, OpKind::Monitor)]);
        // The VIP of a killed daemon is still configured.
        m.handle_result(t(2), 0, OpOutcome::Success);
        assert_eq!(
            runs(&drain(&mut m)),
            vec![(0, 1, OpKind::Stop)],
            "stop the whole group, right to left"
        );
        assert!(m.held().contains(0), "a leftover is claimed until stopped");
        m.handle_result(t(3), 0, OpOutcome::Success);
        assert_eq!(runs(&drain(&mut m)), vec![(0, 0, OpKind::Stop)]);
        assert!(!m.probed(), "not ready to participate while cleaning up");
        m.handle_result(t(4), 0, OpOutcome::Success);
        assert!(m.probed() && m.held().is_empty());
        assert!(m.failed().is_empty(), "a leftover is not a failure");
    }

    fn drain(m: &mut ResourceManager) -> Vec<Action> {
        std::iter::from_fn(|| m.poll_action()).collect()
    }

    fn runs(actions: &[Action]) -> Vec<(usize, usize, OpKind)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Run(r) => Some((r.group, r.resource, r.op)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn start_left_to_right_then_monitor() {
        let mut m = new_probed(settings(vec![(0, 3)]), 2, t(0));
        m.reconcile(t(0), view2(up()));
        let a = drain(&mut m);
        assert_eq!(runs(&a), vec![(0, 0, OpKind::Start)]);
        assert!(a.contains(&Action::Announce));
        assert!(m.held().contains(0), "starting counts as held");
        m.handle_result(t(1), 0, OpOutcome::Success);
        assert_eq!(runs(&drain(&mut m)), vec![(0, 1, OpKind::Start)]);
        m.handle_result(t(2), 0, OpOutcome::Success);
        assert_eq!(runs(&drain(&mut m)), vec![(0, 2, OpKind::Start)]);
        m.handle_result(t(3), 0, OpOutcome::Success);
        assert_eq!(m.groups()[0].phase, Phase::Running);
        assert_eq!(m.next_deadline(), Some(t(1003)));
        m.handle_timeout(t(1003));
        assert_eq!(runs(&drain(&mut m)), vec![(0, 0, OpKind::Monitor)]);
        for r in 1..3 {
            m.handle_result(t(1003), 0, OpOutcome::Success);
            assert_eq!(runs(&drain(&mut m)), vec![(0, r, OpKind::Monitor)]);
        }
        m.handle_result(t(1004), 0, OpOutcome::Success);
        assert_eq!(m.groups()[0].phase, Phase::Running);
        assert_eq!(m.next_deadline(), Some(t(2004)));
    }

    #[test]
    fn failed_start_gives_up_group_right_to_left() {
        let mut m = new_probed(settings(vec![(0, 3)]), 2, t(0));
        m.reconcile(t(0), view2(up()));
        drain(&mut m);
        m.handle_result(t(1), 0, OpOutcome::Success);
        drain(&mut m);
        m.handle_result(t(2), 0, OpOutcome::Failed("exit 1".into()));
        // Stops resource 1 (the failed one) then 0.
        assert_eq!(runs(&drain(&mut m)), vec![(0, 1, OpKind::Stop)]);
        m.handle_result(t(3), 0, OpOutcome::Success);
        assert_eq!(runs(&drain(&mut m)), vec![(0, 0, OpKind::Stop)]);
        m.handle_result(t(4), 0, OpOutcome::Success);
        let a = drain(&mut m);
        assert!(runs(&a).is_empty(), "no restart here: {a:?}");
        assert_eq!(m.groups()[0].phase, Phase::Stopped);
        assert!(m.failed().contains(0));
        assert!(m.groups()[0]
            .failed
            .as_ref()
            .unwrap()
            .contains("start of resource 1 failed: exit 1"));
        // The peer becomes the desired holder.
        assert_eq!(m.desired(0), Some(1));
        // Cleanup makes us eligible again; we're preferred, so we start.
        m.cleanup(t(5), &GroupSet::from_indices([0]));
        m.reconcile(t(5), view2(up()));
        assert_eq!(runs(&drain(&mut m)), vec![(0, 0, OpKind::Start)]);
    }

    #[test]
    fn monitor_failure_fails_over() {
        let mut m = new_probed(settings(vec![(0, 2)]), 2, t(0));
        m.reconcile(t(0), view2(up()));
        drain(&mut m);
        m.handle_result(t(1), 0, OpOutcome::Success);
        m.handle_result(t(2), 0, OpOutcome::Success);
        drain(&mut m);
        m.handle_timeout(t(1002));
        drain(&mut m);
        m.handle_result(t(1003), 0, OpOutcome::Success);
        drain(&mut m);
        m.handle_result(t(1004), 0, OpOutcome::NotRunning);
        assert_eq!(runs(&drain(&mut m)), vec![(0, 1, OpKind::Stop)]);
        m.handle_result(t(1005), 0, OpOutcome::Success);
        m.handle_result(t(1006), 0, OpOutcome::Success);
        assert!(m.failed().contains(0) && !m.held().contains(0));
        assert!(m.groups()[0]
            .failed
            .as_ref()
            .unwrap()
            .contains("monitor of resource 1 failed: not running"));
    }

    #[test]
    fn failback_waits_for_release_and_never_doubles() {
        // We are preferred (on-mode) and the peer holds the group.
        let mut m = new_probed(settings(vec![(0, 1)]), 2, t(0));
        let holds = NodeView {
            held: GroupSet::from_indices([0]),
            ..up()
        };
        m.reconcile(t(0), view2(holds));
        assert!(runs(&drain(&mut m)).is_empty(), "peer still holds it: wait");
        assert_eq!(m.desired(0), Some(0));
        m.reconcile(t(10), view2(up()));
        assert_eq!(runs(&drain(&mut m)), vec![(0, 0, OpKind::Start)]);
    }

    #[test]
    fn release_when_preferred_returns() {
        let mut s = settings(vec![(1, 2)]); // preferred: peer
        s.mode = AutoFailback::On;
        let mut m = new_probed(s.clone(), 2, t(0));
        m.reconcile(t(0), view2(NodeView::default())); // peer dead
        assert_eq!(runs(&drain(&mut m)), vec![(0, 0, OpKind::Start)]);
        m.handle_result(t(1), 0, OpOutcome::Success);
        m.handle_result(t(2), 0, OpOutcome::Success);
        drain(&mut m);
        m.reconcile(t(3), view2(up())); // preferred back
        assert_eq!(runs(&drain(&mut m)), vec![(0, 1, OpKind::Stop)]);
        // Nice failback keeps it instead.
        s.mode = AutoFailback::Off;
        let mut nice = new_probed(s, 2, t(0));
        nice.reconcile(t(0), view2(NodeView::default()));
        drain(&mut nice);
        nice.handle_result(t(1), 0, OpOutcome::Success);
        nice.handle_result(t(2), 0, OpOutcome::Success);
        drain(&mut nice);
        nice.reconcile(t(3), view2(up()));
        assert!(runs(&drain(&mut nice)).is_empty());
        assert_eq!(nice.groups()[0].phase, Phase::Running);
    }

    #[test]
    fn stop_retries_then_block_or_reboot() {
        for policy in [StopFailure::Block, StopFailure::Reboot] {
            let mut s = settings(vec![(1, 1)]);
            s.on_stop_failure = policy;
            let mut m = new_probed(s, 2, t(0));
            m.reconcile(t(0), view2(NodeView::default()));
            drain(&mut m);
            m.handle_result(t(1), 0, OpOutcome::Success);
            m.reconcile(t(2), view2(up()));
            assert_eq!(runs(&drain(&mut m)), vec![(0, 0, OpKind::Stop)]);
            m.handle_result(t(3), 0, OpOutcome::Failed("busy".into()));
            assert!(runs(&drain(&mut m)).is_empty());
            assert_eq!(m.next_deadline(), Some(t(103)));
            m.handle_timeout(t(103));
            assert_eq!(runs(&drain(&mut m)), vec![(0, 0, OpKind::Stop)], "retry 1");
            m.handle_result(t(104), 0, OpOutcome::Failed("busy".into()));
            m.handle_timeout(t(204));
            assert_eq!(runs(&drain(&mut m)), vec![(0, 0, OpKind::Stop)], "retry 2");
            m.handle_result(t(205), 0, OpOutcome::Failed("busy".into()));
            let a = drain(&mut m);
            assert_eq!(m.groups()[0].phase, Phase::Blocked { resource: 0 });
            assert!(
                m.held().contains(0),
                "{policy:?}: a blocked group stays claimed"
            );
            let escalated = a.iter().any(|x| {
                matches!(
                    x,
                    Action::Escalate {
                        group: 0,
                        resource: 0,
                        ..
                    }
                )
            });
            assert_eq!(escalated, policy == StopFailure::Reboot);
            m.cleanup(t(300), &GroupSet::from_indices([0]));
            assert_eq!(
                runs(&drain(&mut m)),
                vec![(0, 0, OpKind::Stop)],
                "cleanup retries the stop"
            );
            m.handle_result(t(301), 0, OpOutcome::Success);
            assert!(!m.held().contains(0));
        }
    }

    #[test]
    fn shutdown_releases_everything_and_rolls_back_starts() {
        let mut m = new_probed(settings(vec![(0, 2), (0, 1)]), 2, t(0));
        m.reconcile(t(0), view2(up()));
        drain(&mut m);
        m.handle_result(t(1), 1, OpOutcome::Success); // group 1 running
        drain(&mut m);
        m.shutdown(t(2));
        assert_eq!(runs(&drain(&mut m)), vec![(1, 0, OpKind::Stop)]);
        assert!(!m.is_quiescent());
        m.handle_result(t(3), 0, OpOutcome::Success); // group 0 res 0 started
        assert_eq!(
            runs(&drain(&mut m)),
            vec![(0, 0, OpKind::Stop)],
            "rolled back"
        );
        m.handle_result(t(4), 0, OpOutcome::Success);
        m.handle_result(t(4), 1, OpOutcome::Success);
        assert!(m.is_quiescent());
        assert!(m.held().is_empty());
        m.reconcile(t(5), view2(up()));
        assert!(
            runs(&drain(&mut m)).is_empty(),
            "nothing restarts after shutdown"
        );
    }

    #[test]
    fn standby_and_takeover() {
        let mut m = new_probed(settings(vec![(0, 1)]), 2, t(0));
        m.reconcile(t(0), view2(up()));
        drain(&mut m);
        m.handle_result(t(1), 0, OpOutcome::Success);
        drain(&mut m);
        m.standby_groups(&GroupSet::from_indices([0]));
        m.reconcile(t(2), view2(up()));
        assert_eq!(runs(&drain(&mut m)), vec![(0, 0, OpKind::Stop)]);
        m.handle_result(t(3), 0, OpOutcome::Success);
        assert_eq!(m.desired(0), Some(1));
        m.takeover(t(4), &GroupSet::from_indices([0]));
        assert_eq!(m.takeover_request(), Some((1, GroupSet::from_indices([0]))));
        assert!(m.standby().is_empty());
        m.handle_timeout(t(504));
        assert_eq!(m.takeover_request(), None, "request expires");
        // A peer's request puts us in standby once per epoch.
        m.handle_takeover_request(1, 7, 1, &GroupSet::from_indices([0]));
        assert!(m.standby().contains(0));
        m.takeover(t(600), &GroupSet::from_indices([0]));
        m.handle_takeover_request(1, 7, 1, &GroupSet::from_indices([0]));
        assert!(!m.standby().contains(0), "same epoch is not applied twice");
    }

    #[test]
    fn healed_split_brain_refreshes_arp() {
        let mut m = new_probed(settings(vec![(0, 1)]), 2, t(0));
        m.reconcile(t(0), view2(up()));
        drain(&mut m);
        m.handle_result(t(1), 0, OpOutcome::Success);
        drain(&mut m);
        let holds = NodeView {
            held: GroupSet::from_indices([0]),
            ..up()
        };
        m.reconcile(t(2), view2(holds));
        assert!(drain(&mut m).is_empty(), "we are preferred: we keep it");
        m.reconcile(t(3), view2(up()));
        assert_eq!(drain(&mut m), vec![Action::Refresh { group: 0 }]);
    }
}
