//! Whole-cluster simulations on a virtual clock: several real `NodeCore`s
//! (the exact decision code of the daemon), a simulated network with
//! per-link cuts and delay, and simulated resources with injectable
//! failures. Each scenario checks where groups end up and that a group is
//! never active on two nodes that can hear each other.

use std::{collections::HashSet, time::Duration};

use hb_common::wire::Status;
use hb_userspace::{
    config::{AutoFailback, StopFailure, Timing},
    groupset::GroupSet,
    membership::{Arrival, NodeState},
    node::{CoreAction, CoreConfig, NodeCore},
    proto::Payload,
    resources::manager::{OpKind, OpOutcome, OpRequest},
    time::Mono,
};

const MS: Duration = Duration::from_millis(1);
const KEEPALIVE: Duration = Duration::from_millis(10);
const DEADTIME: Duration = Duration::from_millis(100);
const INITDEAD: Duration = Duration::from_millis(300);
const OP_TIME: Duration = Duration::from_millis(5);
const NET_DELAY: Duration = Duration::from_micros(200);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stamps {
    /// Arrival = when the packet reached the host (XDP / kernel stamp).
    Kernel,
    /// Arrival = when the daemon got around to reading it.
    Userspace,
}

struct Packet {
    deliver: Mono,
    from: usize,
    to: usize,
    link: usize,
    generation: u64,
    seq: u64,
    status: Status,
    payload: Payload,
}

struct SimNode {
    core: Option<NodeCore>,
    generation: u64,
    seq: u64,
    next_send: Mono,
    /// In-flight resource operations: (completion time, request).
    ops: Vec<(Mono, OpRequest)>,
    /// The real state of resources on this machine (survives daemon death).
    running: Vec<Vec<bool>>,
    fail_start: HashSet<(usize, usize)>,
    fail_stop: HashSet<(usize, usize)>,
    /// Packets received while starved (processed when the starvation ends).
    starved_until: Option<Mono>,
    backlog: Vec<Packet>,
    ping: u16,
    escalations: u32,
}

struct Sim {
    now: Mono,
    base: CoreConfig,
    nodes: Vec<SimNode>,
    queue: Vec<Packet>,
    /// Cut (from, to, link) triples.
    cut: HashSet<(usize, usize, usize)>,
    stamps: Stamps,
    /// Event-loop order after a starvation: check timers before reading the
    /// queued heartbeats (a classic loop) instead of hb's read-first order.
    timers_first: bool,
    /// Max number of nodes with a group active at once while all alive
    /// daemons could hear each other.
    max_double: usize,
    deaths_seen: Vec<(usize, usize)>,
}

fn timing() -> Timing {
    Timing {
        keepalive: KEEPALIVE,
        deadtime: DEADTIME,
        warntime: 50 * MS,
        initdead: INITDEAD,
    }
}

impl Sim {
    /// `groups`: (preferred node, resources) per group.
    fn new(n: usize, links: usize, groups: Vec<(usize, usize)>, mode: AutoFailback) -> Sim {
        let base = CoreConfig {
            nodes: (0..n).map(|i| format!("node{i}")).collect(),
            local: 0,
            links,
            timing: timing(),
            mode,
            groups: groups.clone(),
            digest: 0x5eed,
            ping_targets: 0,
            monitor_interval: 200 * MS,
            stop_retries: 2,
            stop_retry_interval: 20 * MS,
            on_stop_failure: StopFailure::Block,
        };
        let now = Mono::from_nanos(1_000_000_000);
        let mut sim = Sim {
            now,
            nodes: Vec::new(),
            queue: Vec::new(),
            cut: HashSet::new(),
            stamps: Stamps::Kernel,
            timers_first: false,
            max_double: 0,
            deaths_seen: Vec::new(),
            base,
        };
        for _ in 0..n {
            sim.nodes.push(SimNode {
                core: None,
                generation: 0,
                seq: 0,
                next_send: now,
                ops: Vec::new(),
                running: groups.iter().map(|g| vec![false; g.1]).collect(),
                fail_start: HashSet::new(),
                fail_stop: HashSet::new(),
                starved_until: None,
                backlog: Vec::new(),
                ping: 0,
                escalations: 0,
            });
        }
        for i in 0..n {
            sim.start(i);
        }
        sim
    }

    fn with_ping(mut self, targets: u16) -> Sim {
        self.base.ping_targets = targets;
        for i in 0..self.nodes.len() {
            self.nodes[i].ping = targets;
            self.start(i);
        }
        self
    }

    /// Starts (or restarts) the daemon on node `i`.
    fn start(&mut self, i: usize) {
        let mut cfg = self.base.clone();
        cfg.local = i;
        let n = &mut self.nodes[i];
        n.generation += 1;
        n.seq = 0;
        n.ops.clear();
        n.next_send = self.now;
        let mut core = NodeCore::new(cfg, self.now);
        if self.base.ping_targets > 0 {
            core.set_ping_reachable(self.now, n.ping);
        }
        n.core = Some(core);
        self.pump(i);
    }

    /// SIGKILL of the daemon: resources stay as they are.
    fn kill_daemon(&mut self, i: usize) {
        self.nodes[i].core = None;
        self.nodes[i].ops.clear();
    }

    /// The machine dies: daemon gone, resources gone, links silent.
    fn power_off(&mut self, i: usize) {
        self.kill_daemon(i);
        for g in &mut self.nodes[i].running {
            g.fill(false);
        }
    }

    fn partition(&mut self, a: &[usize], b: &[usize]) {
        for &x in a {
            for &y in b {
                for l in 0..self.base.links {
                    self.cut.insert((x, y, l));
                    self.cut.insert((y, x, l));
                }
            }
        }
    }

    fn cut_link(&mut self, link: usize) {
        for x in 0..self.nodes.len() {
            for y in 0..self.nodes.len() {
                self.cut.insert((x, y, link));
            }
        }
    }

    fn heal(&mut self) {
        self.cut.clear();
    }

    fn core(&mut self, i: usize) -> &mut NodeCore {
        self.nodes[i].core.as_mut().expect("daemon running")
    }

    fn send(&mut self, i: usize) {
        let Some(core) = self.nodes[i].core.as_ref() else {
            return;
        };
        let (status, payload) = (core.status(), core.payload());
        let n = &mut self.nodes[i];
        n.seq += 1;
        let (generation, seq) = (n.generation, n.seq);
        for to in 0..self.nodes.len() {
            for link in 0..self.base.links {
                if to != i && !self.cut.contains(&(i, to, link)) {
                    self.queue.push(Packet {
                        deliver: self.now + NET_DELAY,
                        from: i,
                        to,
                        link,
                        generation,
                        seq,
                        status,
                        payload: payload.clone(),
                    });
                }
            }
        }
    }

    /// Executes the actions of node `i` until none are left.
    fn pump(&mut self, i: usize) {
        loop {
            let Some(core) = self.nodes[i].core.as_mut() else {
                return;
            };
            let Some(a) = core.poll_action() else { return };
            match a {
                CoreAction::Run(r) => {
                    let done = self.now + OP_TIME;
                    self.nodes[i].ops.push((done, r));
                }
                CoreAction::SendNow => self.send(i),
                CoreAction::Refresh { .. } => {}
                CoreAction::Escalate { .. } => {
                    self.nodes[i].escalations += 1;
                    self.power_off(i); // reboot: everything gone
                }
                CoreAction::Exit => {
                    self.send(i); // the shutdown notice
                    self.nodes[i].core = None;
                }
            }
        }
    }

    fn outcome(&mut self, i: usize, r: &OpRequest) -> OpOutcome {
        let n = &mut self.nodes[i];
        let key = (r.group, r.resource);
        let state = &mut n.running[r.group][r.resource];
        match r.op {
            OpKind::Start if n.fail_start.contains(&key) => {
                OpOutcome::Failed("injected start failure".into())
            }
            OpKind::Start => {
                *state = true;
                OpOutcome::Success
            }
            OpKind::Stop if n.fail_stop.contains(&key) => {
                OpOutcome::Failed("injected stop failure".into())
            }
            OpKind::Stop => {
                *state = false;
                OpOutcome::Success
            }
            OpKind::Monitor if *state => OpOutcome::Success,
            OpKind::Monitor => OpOutcome::NotRunning,
        }
    }

    fn deliver(&mut self, p: Packet) {
        let at = match self.stamps {
            Stamps::Kernel => p.deliver,
            Stamps::Userspace => self.now,
        };
        let arrival = Arrival {
            node: p.from,
            link: p.link,
            at,
            generation: p.generation,
            seq: p.seq,
            status: p.status,
            payload: p.payload,
        };
        if let Some(core) = self.nodes[p.to].core.as_mut() {
            core.handle_heartbeat(self.now, arrival);
        }
    }

    /// Advances the virtual clock in 1 ms steps.
    fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.now = self.now + MS;
            let now = self.now;
            // Network.
            let (due, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.queue)
                .into_iter()
                .partition(|p| p.deliver <= now);
            self.queue = rest;
            for p in due {
                let to = p.to;
                // A starved daemon reads its socket queue when it next runs.
                if self.nodes[to].starved_until.is_some() {
                    self.nodes[to].backlog.push(p);
                } else {
                    self.deliver(p);
                    self.pump(to);
                }
            }
            for i in 0..self.nodes.len() {
                if self.nodes[i].core.is_none() {
                    continue;
                }
                let starved = self.nodes[i].starved_until.is_some_and(|t| t > now);
                // The sender runs at real-time priority even when starved.
                if now >= self.nodes[i].next_send {
                    self.send(i);
                    self.nodes[i].next_send = now + KEEPALIVE;
                }
                if starved {
                    continue;
                }
                if self.nodes[i].starved_until.take().is_some() {
                    if self.timers_first {
                        self.core(i).handle_timeout(now);
                        self.check_invariants(); // records a (transient) death
                    }
                    for p in std::mem::take(&mut self.nodes[i].backlog) {
                        self.deliver(p);
                    }
                }
                let (done, pending): (Vec<_>, Vec<_>) = std::mem::take(&mut self.nodes[i].ops)
                    .into_iter()
                    .partition(|(t, _)| *t <= now);
                self.nodes[i].ops = pending;
                for (_, r) in done {
                    let o = self.outcome(i, &r);
                    if let Some(c) = self.nodes[i].core.as_mut() {
                        c.handle_op_result(now, r.group, o);
                    }
                    self.pump(i);
                }
                if self.nodes[i]
                    .core
                    .as_ref()
                    .and_then(|c| c.next_deadline())
                    .is_some_and(|d| d <= now)
                {
                    self.core(i).handle_timeout(now);
                }
                self.pump(i);
            }
            self.check_invariants();
        }
    }

    /// Nodes on which group `g` is (at least partly) active.
    fn active(&self, g: usize) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].running[g].iter().any(|r| *r))
            .collect()
    }

    /// Nodes on which group `g` is fully running.
    fn holder(&self, g: usize) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].running[g].iter().all(|r| *r))
            .collect()
    }

    fn check_invariants(&mut self) {
        // Only meaningful while every running daemon hears every other one.
        let up: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].core.is_some())
            .collect();
        let connected = self.cut.is_empty() && up.len() == self.nodes.len();
        let settled = up.iter().all(|&i| {
            let m = self.nodes[i].core.as_ref().unwrap().membership();
            (0..self.nodes.len()).all(|j| m.alive(j))
        });
        if connected && settled {
            for g in 0..self.base.groups.len() {
                let a = self.active(g);
                if a.len() > 1 && std::env::var("SIM_DEBUG").is_ok() {
                    eprintln!("t={} group {g} active on {a:?}", self.now);
                }
                self.max_double = self.max_double.max(a.len());
            }
        }
        for i in 0..self.nodes.len() {
            if let Some(c) = self.nodes[i].core.as_ref() {
                for j in 0..self.nodes.len() {
                    if c.membership().peer(j).state == NodeState::Dead
                        && !self.deaths_seen.contains(&(i, j))
                    {
                        self.deaths_seen.push((i, j));
                    }
                }
            }
        }
    }

    fn sees_dead(&self, observer: usize, node: usize) -> bool {
        self.nodes[observer]
            .core
            .as_ref()
            .is_some_and(|c| c.membership().peer(node).state == NodeState::Dead)
    }
}

#[test]
fn active_active_failover_and_failback_on() {
    // FAQ q8: two groups preferring different nodes.
    let mut s = Sim::new(2, 1, vec![(0, 2), (1, 1)], AutoFailback::On);
    s.run_for(200 * MS);
    assert_eq!(
        (s.holder(0), s.holder(1)),
        (vec![0], vec![1]),
        "each group on its preferred node"
    );

    s.power_off(0);
    let t0 = s.now;
    s.run_for(DEADTIME + 50 * MS);
    assert_eq!(s.holder(0), vec![1], "group 0 failed over");
    assert!(s.now.since(t0) <= DEADTIME + 50 * MS);

    s.start(0);
    s.run_for(INITDEAD + 200 * MS);
    assert_eq!(
        (s.holder(0), s.holder(1)),
        (vec![0], vec![1]),
        "failback to the preferred node"
    );
    assert_eq!(s.max_double, 1, "never active on two connected nodes");
}

#[test]
fn failover_time_is_deadtime_plus_start() {
    let mut s = Sim::new(2, 1, vec![(0, 1)], AutoFailback::On);
    s.run_for(200 * MS);
    s.power_off(0);
    let t0 = s.now;
    let mut took = None;
    for _ in 0..400 {
        s.run_for(MS);
        if s.holder(0) == vec![1] {
            took = Some(s.now.since(t0));
            break;
        }
    }
    let took = took.expect("failed over");
    // Last heartbeat up to one keepalive before the power-off, then
    // deadtime, then one 5 ms start operation.
    assert!(
        took >= DEADTIME - KEEPALIVE && took <= DEADTIME + OP_TIME + 3 * MS,
        "{took:?}"
    );
}

#[test]
fn nice_failback_keeps_groups_where_they_run() {
    let mut s = Sim::new(2, 1, vec![(0, 1), (1, 1)], AutoFailback::Off);
    s.run_for(200 * MS);
    assert_eq!((s.holder(0), s.holder(1)), (vec![0], vec![1]));
    s.power_off(0);
    s.run_for(DEADTIME + 50 * MS);
    assert_eq!(s.holder(0), vec![1]);
    s.start(0);
    s.run_for(INITDEAD + 300 * MS);
    assert_eq!(
        (s.holder(0), s.holder(1)),
        (vec![1], vec![1]),
        "no failback in nice mode"
    );
    assert_eq!(s.max_double, 1);
}

#[test]
fn sigkill_leaves_vip_and_restart_cleans_it_up() {
    let mut s = Sim::new(2, 1, vec![(0, 1)], AutoFailback::On);
    s.run_for(200 * MS);
    s.kill_daemon(0); // the address stays configured on node 0
    s.run_for(DEADTIME + 50 * MS);
    assert_eq!(
        s.active(0),
        vec![0, 1],
        "no fencing: the leftover stays until node 0 restarts"
    );
    s.start(0);
    // The probe finds the leftover and stops it before node 0 says it is up.
    let mut cleaned = false;
    for _ in 0..30 {
        s.run_for(MS);
        let up = s.core(0).status() == Status::Up;
        let leftover = s.active(0).contains(&0);
        assert!(
            !(up && leftover),
            "node 0 joined with a leftover still configured"
        );
        if !leftover {
            cleaned = true;
            break;
        }
    }
    assert!(cleaned, "startup probe removed the leftover");
    assert_eq!(s.active(0), vec![1]);
    s.run_for(INITDEAD + 200 * MS);
    assert_eq!(s.holder(0), vec![0], "then normal failback");
}

#[test]
fn partition_heals_to_one_holder_per_group() {
    let mut s = Sim::new(2, 2, vec![(0, 1), (1, 1)], AutoFailback::On);
    s.run_for(200 * MS);
    s.partition(&[0], &[1]);
    s.run_for(DEADTIME + 100 * MS);
    assert_eq!(
        s.active(0),
        vec![0, 1],
        "split brain without fencing: both run it"
    );
    s.heal();
    s.run_for(100 * MS);
    assert_eq!(
        (s.active(0), s.active(1)),
        (vec![0], vec![1]),
        "healed: preferred nodes keep their groups"
    );
    // Nice mode resolves by node order among holders.
    let mut n = Sim::new(2, 1, vec![(1, 1)], AutoFailback::Off);
    n.run_for(200 * MS);
    n.partition(&[0], &[1]);
    n.run_for(DEADTIME + 100 * MS);
    n.heal();
    n.run_for(100 * MS);
    assert_eq!(
        n.active(0),
        vec![1],
        "nice mode: the preferred holder keeps it"
    );
}

#[test]
fn losing_one_medium_is_not_a_failover() {
    let mut s = Sim::new(2, 2, vec![(0, 1)], AutoFailback::On);
    s.run_for(200 * MS);
    s.cut_link(0);
    s.run_for(500 * MS);
    assert_eq!(s.holder(0), vec![0]);
    assert!(!s.sees_dead(1, 0) && !s.sees_dead(0, 1));
    let link0 = &s.core(1).membership().peer(0).links[0];
    assert!(!link0.up, "the cut link is reported dead");
    assert!(s.core(1).membership().peer(0).links[1].up);
}

#[test]
fn failed_start_gives_group_to_peer() {
    let mut s = Sim::new(2, 1, vec![(0, 3)], AutoFailback::On);
    s.nodes[0].fail_start.insert((0, 1));
    s.run_for(300 * MS);
    assert_eq!(s.holder(0), vec![1]);
    assert!(s.active(0) == vec![1], "node 0 rolled back resource 0");
    assert!(s.core(0).resources().failed().contains(0));
    assert_eq!(s.max_double, 1);
}

#[test]
fn monitor_failure_fails_over() {
    let mut s = Sim::new(2, 1, vec![(0, 2)], AutoFailback::On);
    s.run_for(200 * MS);
    s.nodes[0].running[0][1] = false; // the service dies under us
    s.run_for(400 * MS);
    assert_eq!(
        s.holder(0),
        vec![1],
        "monitor noticed and the peer took over"
    );
    assert_eq!(s.active(0), vec![1]);
}

#[test]
fn blocked_stop_is_never_started_twice() {
    let mut s = Sim::new(2, 1, vec![(1, 1)], AutoFailback::On);
    s.power_off(1);
    s.run_for(INITDEAD + 100 * MS);
    assert_eq!(s.holder(0), vec![0]);
    s.nodes[0].fail_stop.insert((0, 0));
    s.start(1); // preferred node returns: node 0 must release but cannot
    s.run_for(INITDEAD + 500 * MS);
    assert_eq!(s.active(0), vec![0], "blocked on node 0; node 1 waits");
    assert_eq!(s.max_double, 1);
    s.nodes[0].fail_stop.clear();
    let now = s.now;
    s.core(0).cleanup(now, &GroupSet::from_indices([0]));
    s.pump(0);
    s.run_for(100 * MS);
    assert_eq!(
        s.holder(0),
        vec![1],
        "after cleanup the stop succeeds and failback completes"
    );
}

#[test]
fn stop_failure_escalates_to_reboot() {
    let mut s = Sim::new(2, 1, vec![(1, 1)], AutoFailback::On);
    s.base.on_stop_failure = StopFailure::Reboot;
    s.start(0);
    s.start(1);
    s.power_off(1);
    s.run_for(INITDEAD + 100 * MS);
    s.nodes[0].fail_stop.insert((0, 0));
    s.start(1);
    s.run_for(INITDEAD + 500 * MS);
    assert_eq!(s.nodes[0].escalations, 1, "node 0 rebooted itself");
    assert_eq!(s.holder(0), vec![1], "and node 1 took over safely");
}

#[test]
fn standby_and_takeover_commands() {
    let mut s = Sim::new(2, 1, vec![(0, 1), (1, 1)], AutoFailback::On);
    s.run_for(200 * MS);
    let now = s.now;
    let all = s.core(0).group_set("all").unwrap();
    s.core(0).standby(now, &all);
    s.pump(0);
    s.run_for(100 * MS);
    assert_eq!(
        (s.holder(0), s.holder(1)),
        (vec![1], vec![1]),
        "hb standby: node 1 runs everything"
    );
    let now = s.now;
    let foreign = s.core(0).group_set("foreign").unwrap();
    assert_eq!(foreign, GroupSet::from_indices([1]));
    s.core(0).takeover(now, &all);
    s.pump(0);
    s.run_for(200 * MS);
    assert_eq!(
        (s.holder(0), s.holder(1)),
        (vec![0], vec![0]),
        "hb takeover all: node 0 runs everything"
    );
    assert_eq!(s.max_double, 1);
}

#[test]
fn three_nodes_cascade_in_node_order() {
    let mut s = Sim::new(3, 1, vec![(0, 1)], AutoFailback::On);
    s.run_for(200 * MS);
    assert_eq!(s.holder(0), vec![0]);
    s.power_off(0);
    s.run_for(DEADTIME + 50 * MS);
    assert_eq!(s.holder(0), vec![1], "first candidate in ha.cf order");
    s.power_off(1);
    s.run_for(DEADTIME + 50 * MS);
    assert_eq!(s.holder(0), vec![2]);
    s.start(1);
    s.run_for(INITDEAD + 200 * MS);
    assert_eq!(
        s.holder(0),
        vec![2],
        "not the preferred node: the holder keeps it"
    );
    s.start(0);
    s.run_for(INITDEAD + 200 * MS);
    assert_eq!(s.holder(0), vec![0], "preferred node returns: failback");
    assert_eq!(s.max_double, 1);
}

#[test]
fn graceful_shutdown_hands_over_before_deadtime() {
    let mut s = Sim::new(2, 1, vec![(0, 2)], AutoFailback::On);
    s.run_for(200 * MS);
    let t0 = s.now;
    let now = s.now;
    s.core(0).shutdown(now);
    s.pump(0);
    let mut took = None;
    for _ in 0..200 {
        s.run_for(MS);
        if s.holder(0) == vec![1] {
            took = Some(s.now.since(t0));
            break;
        }
    }
    let took = took.expect("handed over");
    assert!(
        took < DEADTIME,
        "graceful handover in {took:?}, no deadtime wait"
    );
    assert!(s.nodes[0].core.is_none(), "daemon exited after releasing");
    assert_eq!(s.active(0), vec![1]);
}

#[test]
fn lost_ping_targets_move_resources() {
    let mut s = Sim::new(2, 1, vec![(0, 1)], AutoFailback::On).with_ping(2);
    s.run_for(INITDEAD + 200 * MS);
    assert_eq!(s.holder(0), vec![0]);
    let now = s.now;
    s.core(0).set_ping_reachable(now, 1); // node 0 lost its uplink
    s.pump(0);
    s.run_for(100 * MS);
    assert_eq!(
        s.holder(0),
        vec![1],
        "ipfail: the better connected node takes over"
    );
    let now = s.now;
    s.core(0).set_ping_reachable(now, 2);
    s.pump(0);
    s.run_for(100 * MS);
    assert_eq!(
        s.holder(0),
        vec![0],
        "connectivity back: failback (on mode)"
    );
}

#[test]
fn starved_receiver_kernel_timestamps_vs_userspace_timestamps() {
    // Node 1's daemon cannot run for 400 ms (CPU starvation, deadtime is
    // 100 ms); its real-time sender keeps sending. hb reads everything that
    // queued up before it looks at timers, and applies Heartbeat's rule that
    // a gap longer than deadtime means the node was dead:
    // - kernel (XDP) timestamps: the true gaps are ~10 ms: no death, no
    //   takeover, honest tuning evidence;
    // - read-time (userspace) timestamps: the gap looks like 400 ms, so the
    //   peer is declared dead (and back at once: no takeover, but a false
    //   death and tuning evidence that would push deadtime far too high);
    // - a classic loop that checks timers before reading: a false death.
    // (stamps, timers_first, want deaths, want gap >= 350 ms)
    let cases = [
        (Stamps::Kernel, false, false, false),
        (Stamps::Userspace, false, true, true),
        (Stamps::Kernel, true, true, false),
    ];
    for (stamps, timers_first, want_death, want_big_gap) in cases {
        let mut s = Sim::new(2, 1, vec![(0, 1)], AutoFailback::On);
        s.stamps = stamps;
        s.timers_first = timers_first;
        s.run_for(200 * MS);
        s.nodes[1].starved_until = Some(s.now + 400 * MS);
        let mut node1_ran_it = false;
        for _ in 0..600 {
            s.run_for(MS);
            node1_ran_it |= s.active(0).contains(&1);
        }
        let label = format!("{stamps:?}, timers_first={timers_first}");
        let deaths = s.core(1).membership().peer(0).deaths;
        assert_eq!(deaths > 0, want_death, "{label}: deaths {deaths}");
        let max_gap = s.core(1).membership().peer(0).gaps.max();
        assert_eq!(
            max_gap >= 350 * MS,
            want_big_gap,
            "{label}: max gap {max_gap:?}"
        );
        if !timers_first {
            assert!(
                !node1_ran_it,
                "{label}: no takeover: the peer is back in the same step"
            );
            assert_eq!(s.active(0), vec![0], "{label}");
        }
        if stamps == Stamps::Kernel && !timers_first {
            assert!(
                max_gap <= KEEPALIVE + MS,
                "{label}: true gaps stay ~keepalive, got {max_gap:?}"
            );
        }
    }
}
