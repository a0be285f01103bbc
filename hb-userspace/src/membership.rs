//! Cluster membership: a pure state machine over timestamped heartbeats.
//!
//! Inputs: [`Membership::handle_heartbeat`] with the heartbeat's *arrival*
//! time (the XDP timestamp when available, which stays exact while the daemon
//! is starved), and [`Membership::handle_timeout`] with the current time.
//! Outputs: [`Event`]s from [`Membership::poll_event`]. No clocks, no I/O.
//!
//! Per node: `Init` (not heard yet, within initdead) -> `Up` -> `Dead`
//! (silent for deadtime, or announced shutdown) -> `Up` again (returning
//! after a partition, or restarted with a new generation). Per link (node x
//! medium) the same without `Init` grace. A node is up while *any* link
//! hears it. Late heartbeats (gap > warntime) are reported with the measured
//! gap; a gap longer than deadtime means the node *was* dead (Heartbeat's
//! rule), reported as a death and an immediate return. The caller must feed
//! every queued heartbeat before calling `handle_timeout`, so a starved
//! daemon never declares a node dead because it did not get to read its
//! heartbeats - and with kernel timestamps, never mistakes its own
//! starvation for a late heartbeat either.

use std::{collections::VecDeque, time::Duration};

use hb_common::wire::Status;

use crate::{
    config::Timing,
    gapstats::GapStats,
    proto::{Payload, ReplayGuard, ReplayVerdict},
    time::Mono,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    Init,
    Up,
    Dead,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadReason {
    /// Silent for deadtime.
    Timeout,
    /// Never heard within initdead.
    NeverHeard,
    /// Announced a graceful shutdown.
    Shutdown,
    /// A heartbeat arrived more than deadtime after the previous one: the
    /// node was dead in between (it is back at once).
    LateHeartbeat,
}

/// An authenticated heartbeat, as fed to the state machine.
#[derive(Clone, Debug)]
pub struct Arrival {
    pub node: usize,
    pub link: usize,
    /// Arrival time (XDP or kernel timestamp, or read time).
    pub at: Mono,
    pub generation: u64,
    pub seq: u64,
    pub status: Status,
    pub payload: Payload,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    NodeUp {
        node: usize,
        after_partition: bool,
    },
    NodeDead {
        node: usize,
        silence: Duration,
        reason: DeadReason,
    },
    LinkUp {
        node: usize,
        link: usize,
    },
    LinkDead {
        node: usize,
        link: usize,
        silence: Duration,
    },
    /// A heartbeat arrived `gap` after the previous one (> warntime).
    Late {
        node: usize,
        gap: Duration,
    },
    /// The node restarted (generation increased).
    Restarted {
        node: usize,
        generation: u64,
    },
    /// Every peer has been heard or given up on (initdead): the cluster
    /// view is complete enough to take resource decisions.
    Settled,
}

#[derive(Clone, Debug, Default)]
pub struct LinkView {
    pub up: bool,
    pub last: Option<Mono>,
    pub count: u64,
    pub last_gap: Option<Duration>,
}

#[derive(Clone, Debug)]
pub struct Peer {
    pub name: String,
    pub state: NodeState,
    pub since: Mono,
    /// Arrival of the newest heartbeat (first copy of the highest seq).
    pub last: Option<Mono>,
    highest_seq: u64,
    pub last_gap: Option<Duration>,
    pub gaps: GapStats,
    pub status: Option<Status>,
    pub payload: Option<Payload>,
    pub links: Vec<LinkView>,
    guard: ReplayGuard,
    pub duplicates: u64,
    pub replays: u64,
    /// Times this node was declared dead.
    pub deaths: u64,
    /// Heartbeats that arrived later than warntime after the previous one.
    pub late: u64,
}

impl Peer {
    pub fn generation(&self) -> Option<u64> {
        self.guard.generation()
    }

    /// Declares the node (index `node`) dead at `at`; returns the event.
    fn die(&mut self, node: usize, at: Mono, silence: Duration, reason: DeadReason) -> Event {
        self.state = NodeState::Dead;
        self.deaths += 1;
        self.since = at;
        Event::NodeDead {
            node,
            silence,
            reason,
        }
    }
}

pub struct Membership {
    timing: Timing,
    local: usize,
    started: Mono,
    settled: bool,
    peers: Vec<Peer>,
    events: VecDeque<Event>,
}

impl Membership {
    /// `nodes` in config order, `links` = number of media.
    pub fn new(timing: Timing, nodes: &[String], local: usize, links: usize, now: Mono) -> Self {
        let peers = nodes
            .iter()
            .map(|n| Peer {
                name: n.clone(),
                state: NodeState::Init,
                since: now,
                last: None,
                highest_seq: 0,
                last_gap: None,
                gaps: GapStats::default(),
                status: None,
                payload: None,
                links: vec![LinkView::default(); links],
                guard: ReplayGuard::default(),
                duplicates: 0,
                replays: 0,
                deaths: 0,
                late: 0,
            })
            .collect();
        let mut m = Membership {
            timing,
            local,
            started: now,
            settled: false,
            peers,
            events: VecDeque::new(),
        };
        m.peers[local].state = NodeState::Up;
        m.check_settled();
        m
    }

    pub fn peers(&self) -> &[Peer] {
        &self.peers
    }

    pub fn peer(&self, i: usize) -> &Peer {
        &self.peers[i]
    }

    pub fn local(&self) -> usize {
        self.local
    }

    pub fn is_settled(&self) -> bool {
        self.settled
    }

    /// Whether node `i` is alive (the local node always is).
    pub fn alive(&self, i: usize) -> bool {
        i == self.local || self.peers[i].state == NodeState::Up
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Feeds one authenticated heartbeat. Returns the replay verdict (for
    /// counters); only `Fresh` heartbeats change state.
    pub fn handle_heartbeat(&mut self, now: Mono, a: Arrival) -> ReplayVerdict {
        let _ = now;
        if a.node == self.local || a.node >= self.peers.len() {
            return ReplayVerdict::Duplicate;
        }
        let (warntime, deadtime) = (self.timing.warntime, self.timing.deadtime);
        let p = &mut self.peers[a.node];
        let verdict = p.guard.check(a.link, a.generation, a.seq);
        match verdict {
            ReplayVerdict::Fresh { .. } => {}
            ReplayVerdict::Duplicate => {
                p.duplicates += 1;
                return verdict;
            }
            ReplayVerdict::Replay | ReplayVerdict::OldGeneration => {
                p.replays += 1;
                return verdict;
            }
        }
        let restarted = matches!(verdict, ReplayVerdict::Fresh { restarted: true });
        if restarted {
            p.highest_seq = 0;
            self.events.push_back(Event::Restarted {
                node: a.node,
                generation: a.generation,
            });
        }

        // Link level.
        if let Some(l) = p.links.get_mut(a.link) {
            if let Some(prev) = l.last {
                if a.at > prev {
                    l.last_gap = Some(a.at.since(prev));
                }
            }
            l.last = Some(l.last.map_or(a.at, |x| x.max(a.at)));
            l.count += 1;
            if !l.up {
                l.up = true;
                self.events.push_back(Event::LinkUp {
                    node: a.node,
                    link: a.link,
                });
            }
        }

        // Node level: only the first copy of each new sequence number counts
        // toward gaps (the same heartbeat arrives once per medium).
        if a.seq > p.highest_seq {
            p.highest_seq = a.seq;
            if let Some(prev) = p.last {
                if a.at > prev && !restarted {
                    let gap = a.at.since(prev);
                    p.last_gap = Some(gap);
                    p.gaps.record(gap);
                    if gap > warntime && p.state == NodeState::Up {
                        p.late += 1;
                        self.events.push_back(Event::Late { node: a.node, gap });
                    }
                    if gap > deadtime && p.state == NodeState::Up {
                        // Silent for longer than deadtime: dead in between,
                        // alive again now (the NodeUp below).
                        let ev = p.die(a.node, a.at, gap, DeadReason::LateHeartbeat);
                        self.events.push_back(ev);
                    }
                }
            }
            p.last = Some(p.last.map_or(a.at, |x| x.max(a.at)));
        }
        p.status = Some(a.status);
        p.payload = Some(a.payload);

        match (a.status, p.state) {
            (Status::Shutdown, NodeState::Up) | (Status::Shutdown, NodeState::Init) => {
                let ev = p.die(a.node, a.at, Duration::ZERO, DeadReason::Shutdown);
                self.events.push_back(ev);
            }
            (Status::Shutdown, NodeState::Dead) => {}
            (_, NodeState::Init) | (_, NodeState::Dead) => {
                let after_partition = p.state == NodeState::Dead && !restarted;
                p.state = NodeState::Up;
                p.since = a.at;
                self.events.push_back(Event::NodeUp {
                    node: a.node,
                    after_partition,
                });
            }
            (_, NodeState::Up) => {}
        }
        self.check_settled();
        verdict
    }

    /// Declares silent nodes and links dead. Call after feeding every
    /// heartbeat that is queued.
    pub fn handle_timeout(&mut self, now: Mono) {
        let Timing {
            deadtime, initdead, ..
        } = self.timing;
        for (i, p) in self.peers.iter_mut().enumerate() {
            if i == self.local {
                continue;
            }
            for (li, l) in p.links.iter_mut().enumerate() {
                if let (true, Some(last)) = (l.up, l.last) {
                    let silence = now.since(last);
                    if silence > deadtime {
                        l.up = false;
                        self.events.push_back(Event::LinkDead {
                            node: i,
                            link: li,
                            silence,
                        });
                    }
                }
            }
            match (p.state, p.last) {
                (NodeState::Up, Some(last)) if now.since(last) > deadtime => {
                    let ev = p.die(i, now, now.since(last), DeadReason::Timeout);
                    self.events.push_back(ev);
                }
                (NodeState::Init, _) if now.since(self.started) >= initdead => {
                    let ev = p.die(i, now, now.since(self.started), DeadReason::NeverHeard);
                    self.events.push_back(ev);
                }
                _ => {}
            }
        }
        self.check_settled();
    }

    /// When `handle_timeout` must next be called.
    pub fn next_deadline(&self) -> Option<Mono> {
        let Timing {
            deadtime, initdead, ..
        } = self.timing;
        let tick = Duration::from_nanos(1);
        let mut next: Option<Mono> = None;
        let mut consider = |t: Mono| next = Some(next.map_or(t, |n: Mono| n.min(t)));
        for (i, p) in self.peers.iter().enumerate() {
            if i == self.local {
                continue;
            }
            for l in &p.links {
                if let (true, Some(last)) = (l.up, l.last) {
                    consider(last + deadtime + tick);
                }
            }
            match (p.state, p.last) {
                (NodeState::Up, Some(last)) => consider(last + deadtime + tick),
                (NodeState::Init, _) => consider(self.started + initdead),
                _ => {}
            }
        }
        next
    }

    fn check_settled(&mut self) {
        if !self.settled && self.peers.iter().all(|p| p.state != NodeState::Init) {
            self.settled = true;
            self.events.push_back(Event::Settled);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn timing() -> Timing {
        Timing {
            keepalive: 10 * MS,
            deadtime: 100 * MS,
            warntime: 50 * MS,
            initdead: 300 * MS,
        }
    }

    fn t(ms: u64) -> Mono {
        Mono::from_nanos(1_000_000_000 + ms * 1_000_000)
    }

    fn nodes(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("n{i}")).collect()
    }

    fn hb(node: usize, link: usize, at: Mono, seq: u64) -> Arrival {
        Arrival {
            node,
            link,
            at,
            generation: 1,
            seq,
            status: Status::Up,
            payload: Payload::default(),
        }
    }

    fn drain(m: &mut Membership) -> Vec<Event> {
        std::iter::from_fn(|| m.poll_event()).collect()
    }

    #[test]
    fn single_node_is_settled_at_once() {
        let mut m = Membership::new(timing(), &nodes(1), 0, 1, t(0));
        assert_eq!(drain(&mut m), vec![Event::Settled]);
        assert_eq!(m.next_deadline(), None);
    }

    #[test]
    fn up_late_dead_and_return_after_partition() {
        let mut m = Membership::new(timing(), &nodes(2), 0, 1, t(0));
        assert!(drain(&mut m).is_empty());
        assert_eq!(m.next_deadline(), Some(t(300)), "initdead");
        m.handle_heartbeat(t(5), hb(1, 0, t(5), 1));
        assert_eq!(
            drain(&mut m),
            vec![
                Event::LinkUp { node: 1, link: 0 },
                Event::NodeUp {
                    node: 1,
                    after_partition: false
                },
                Event::Settled,
            ]
        );
        m.handle_heartbeat(t(15), hb(1, 0, t(15), 2));
        // 70 ms gap > warntime 50 ms: reported with the measured gap.
        m.handle_heartbeat(t(85), hb(1, 0, t(85), 3));
        assert_eq!(
            drain(&mut m),
            vec![Event::Late {
                node: 1,
                gap: 70 * MS
            }]
        );
        assert_eq!(m.peer(1).gaps.max(), 70 * MS);
        assert_eq!(m.next_deadline(), Some(t(185) + Duration::from_nanos(1)));
        m.handle_timeout(t(185));
        assert!(
            drain(&mut m).is_empty(),
            "exactly deadtime of silence is not dead"
        );
        m.handle_timeout(t(186));
        assert_eq!(
            drain(&mut m),
            vec![
                Event::LinkDead {
                    node: 1,
                    link: 0,
                    silence: 101 * MS
                },
                Event::NodeDead {
                    node: 1,
                    silence: 101 * MS,
                    reason: DeadReason::Timeout
                },
            ]
        );
        assert!(!m.alive(1));
        m.handle_heartbeat(t(400), hb(1, 0, t(400), 4));
        assert_eq!(
            drain(&mut m),
            vec![
                Event::LinkUp { node: 1, link: 0 },
                Event::NodeUp {
                    node: 1,
                    after_partition: true
                },
            ]
        );
    }

    #[test]
    fn a_gap_longer_than_deadtime_is_a_death_and_a_return() {
        // Heartbeat's rule: an interval > deadtime marks the node dead.
        let mut m = Membership::new(timing(), &nodes(2), 0, 1, t(0));
        m.handle_heartbeat(t(0), hb(1, 0, t(0), 1));
        drain(&mut m);
        // The daemon was starved; the next heartbeat it reads was *stamped*
        // 150 ms after the previous one (a real outage, deadtime 100 ms).
        m.handle_heartbeat(t(150), hb(1, 0, t(150), 2));
        assert_eq!(
            drain(&mut m),
            vec![
                Event::Late {
                    node: 1,
                    gap: 150 * MS
                },
                Event::NodeDead {
                    node: 1,
                    silence: 150 * MS,
                    reason: DeadReason::LateHeartbeat
                },
                Event::NodeUp {
                    node: 1,
                    after_partition: true
                },
            ]
        );
        assert!(m.alive(1));
        assert_eq!(m.peer(1).deaths, 1);
    }

    #[test]
    fn xdp_timestamps_keep_a_starved_daemon_honest() {
        // The daemon was starved from t=10 to t=500 but the kernel stamped
        // every heartbeat on time. Feeding them before the timeout keeps the
        // peer alive; only the late read would have looked like 490 ms.
        let mut m = Membership::new(timing(), &nodes(2), 0, 1, t(0));
        m.handle_heartbeat(t(0), hb(1, 0, t(0), 1));
        drain(&mut m);
        for (i, at) in (10..=500).step_by(10).enumerate() {
            m.handle_heartbeat(t(500), hb(1, 0, t(at), i as u64 + 2));
        }
        m.handle_timeout(t(500));
        let ev = drain(&mut m);
        assert!(ev.is_empty(), "{ev:?}");
        assert_eq!(m.peer(1).gaps.max(), 10 * MS);
    }

    #[test]
    fn node_survives_while_any_link_hears_it() {
        let mut m = Membership::new(timing(), &nodes(2), 0, 2, t(0));
        let mut seq = 0;
        let mut both = |m: &mut Membership, at: u64, links: &[usize]| {
            seq += 1;
            for l in links {
                m.handle_heartbeat(t(at), hb(1, *l, t(at), seq));
            }
        };
        both(&mut m, 0, &[0, 1]);
        drain(&mut m);
        for at in (10..=300).step_by(10) {
            both(&mut m, at, &[1]); // link 0 is cut
            m.handle_timeout(t(at));
        }
        let ev = drain(&mut m);
        assert_eq!(
            ev,
            vec![Event::LinkDead {
                node: 1,
                link: 0,
                silence: 110 * MS
            }]
        );
        assert!(m.alive(1));
        assert_eq!(
            m.peer(1).gaps.max(),
            10 * MS,
            "the same seq on two links is one heartbeat"
        );
        both(&mut m, 310, &[0, 1]);
        assert_eq!(drain(&mut m), vec![Event::LinkUp { node: 1, link: 0 }]);
    }

    #[test]
    fn never_heard_nodes_die_at_initdead_and_settle() {
        let mut m = Membership::new(timing(), &nodes(3), 1, 1, t(0));
        m.handle_heartbeat(t(10), hb(0, 0, t(10), 1));
        m.handle_heartbeat(t(20), hb(0, 0, t(20), 2));
        drain(&mut m);
        assert!(!m.is_settled(), "node 2 still in initdead");
        // Node 0 keeps talking.
        for (i, at) in (30..=290).step_by(10).enumerate() {
            m.handle_heartbeat(t(at), hb(0, 0, t(at), i as u64 + 3));
        }
        m.handle_timeout(t(299));
        assert!(drain(&mut m).is_empty());
        m.handle_timeout(t(300));
        assert_eq!(
            drain(&mut m),
            vec![
                Event::NodeDead {
                    node: 2,
                    silence: 300 * MS,
                    reason: DeadReason::NeverHeard
                },
                Event::Settled,
            ]
        );
        assert!(m.is_settled());
    }

    #[test]
    fn replays_and_restarts() {
        let mut m = Membership::new(timing(), &nodes(2), 0, 1, t(0));
        assert_eq!(
            m.handle_heartbeat(t(0), hb(1, 0, t(0), 5)),
            ReplayVerdict::Fresh { restarted: false }
        );
        assert_eq!(
            m.handle_heartbeat(t(1), hb(1, 0, t(1), 5)),
            ReplayVerdict::Duplicate
        );
        drain(&mut m);
        let mut new_gen = hb(1, 0, t(20), 1);
        new_gen.generation = 2;
        assert_eq!(
            m.handle_heartbeat(t(20), new_gen),
            ReplayVerdict::Fresh { restarted: true }
        );
        assert_eq!(
            drain(&mut m),
            vec![Event::Restarted {
                node: 1,
                generation: 2
            }]
        );
        assert_eq!(
            m.handle_heartbeat(t(30), hb(1, 0, t(30), 6)),
            ReplayVerdict::OldGeneration
        );
        assert_eq!(m.peer(1).replays, 1);
        assert_eq!(m.peer(1).duplicates, 1);
        assert_eq!(m.peer(1).gaps.count, 0, "no gap across a restart");
    }

    #[test]
    fn shutdown_is_immediate_death() {
        let mut m = Membership::new(timing(), &nodes(2), 0, 1, t(0));
        m.handle_heartbeat(t(0), hb(1, 0, t(0), 1));
        drain(&mut m);
        let mut bye = hb(1, 0, t(10), 2);
        bye.status = Status::Shutdown;
        m.handle_heartbeat(t(10), bye.clone());
        assert_eq!(
            drain(&mut m),
            vec![Event::NodeDead {
                node: 1,
                silence: Duration::ZERO,
                reason: DeadReason::Shutdown
            }]
        );
        bye.seq = 3;
        m.handle_heartbeat(t(20), bye);
        assert!(
            drain(&mut m).is_empty(),
            "repeated shutdown notices do not flap"
        );
        let mut back = hb(1, 0, t(500), 1);
        back.generation = 2;
        m.handle_heartbeat(t(500), back);
        assert_eq!(
            drain(&mut m),
            vec![
                Event::Restarted {
                    node: 1,
                    generation: 2
                },
                Event::NodeUp {
                    node: 1,
                    after_partition: false
                },
            ]
        );
    }

    #[test]
    fn own_heartbeats_are_ignored() {
        let mut m = Membership::new(timing(), &nodes(2), 0, 1, t(0));
        m.handle_heartbeat(t(0), hb(0, 0, t(0), 1));
        assert!(drain(&mut m).is_empty());
        assert_eq!(m.peer(1).state, NodeState::Init);
    }
}
