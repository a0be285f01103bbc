//! Which node should hold each resource group: a pure function of the
//! cluster view, evaluated identically on every node (everyone sees the same
//! heartbeats), so no extra election protocol is needed.
//!
//! Candidates for group `g`: alive, participating nodes (status Up, same
//! config digest) where `g` has not failed, that see as many ping targets as
//! the best node (ipfail's tie breaker). Nodes that asked for standby on `g`
//! are used only when no other candidate exists, so `hb standby` moves a
//! service away but never takes it down.
//!
//! Among candidates (FAQ q8):
//! - `auto_failback on`: the preferred node; else a current holder; else
//!   the first candidate in ha.cf node order;
//! - `auto_failback off` ("nice"): a current holder; else the preferred
//!   node; else the first candidate.
//!
//! A holder never starts a group another alive node still holds
//! ([`held_elsewhere`]): the current holder releases first, then the new one
//! acquires, so a service address is never configured twice. Nor does it
//! start a group that a *joining* node (alive, still in Init) would get once
//! it is up ([`ClusterView::with_joining`]): that avoids the start-up race
//! where two nodes booting together each grab the other's group.

use crate::{config::AutoFailback, groupset::GroupSet};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeView {
    pub alive: bool,
    /// Up (not Init/Shutdown) and same config digest: may hold groups.
    pub participating: bool,
    pub held: GroupSet,
    pub standby: GroupSet,
    pub failed: GroupSet,
    /// Reachable ping targets, when ping targets are configured.
    pub ping: Option<u16>,
    /// Alive and still starting up (status Init, within initdead): will be
    /// a candidate soon, so nobody should grab a group it would get.
    pub joining: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterView {
    pub nodes: Vec<NodeView>,
}

impl ClusterView {
    fn best_ping(&self) -> u16 {
        self.nodes
            .iter()
            .filter(|n| n.alive && n.participating)
            .filter_map(|n| n.ping)
            .max()
            .unwrap_or(0)
    }

    fn candidate(&self, i: usize, g: usize, best_ping: u16) -> bool {
        let n = &self.nodes[i];
        n.alive && n.participating && !n.failed.contains(g) && n.ping.unwrap_or(0) >= best_ping
    }
}

/// The node that should hold group `g` (preferred node `preferred`).
pub fn desired_holder(
    g: usize,
    preferred: usize,
    mode: AutoFailback,
    view: &ClusterView,
) -> Option<usize> {
    let best = view.best_ping();
    let pick = |standby: bool| -> Option<usize> {
        let cands: Vec<usize> = (0..view.nodes.len())
            .filter(|&i| view.candidate(i, g, best) && view.nodes[i].standby.contains(g) == standby)
            .collect();
        let first = *cands.first()?;
        let holders: Vec<usize> = cands
            .iter()
            .copied()
            .filter(|&i| view.nodes[i].held.contains(g))
            .collect();
        let holder = if holders.contains(&preferred) {
            Some(preferred)
        } else {
            holders.first().copied()
        };
        let pref = cands.contains(&preferred).then_some(preferred);
        Some(match mode {
            AutoFailback::On => pref.or(holder).unwrap_or(first),
            AutoFailback::Off => holder.or(pref).unwrap_or(first),
        })
    };
    pick(false).or_else(|| pick(true))
}

impl ClusterView {
    /// The view once every joining node participates, or None when nobody
    /// is joining (the view is then the same). Used only to hold back
    /// *starts*; running groups follow [`desired_holder`] on the real view.
    pub fn with_joining(&self) -> Option<ClusterView> {
        if !self.nodes.iter().any(|n| n.joining) {
            return None;
        }
        let mut v = self.clone();
        for n in &mut v.nodes {
            if n.joining {
                n.participating = true;
            }
        }
        Some(v)
    }
}

/// Whether an alive node other than `local` claims group `g`.
pub fn held_elsewhere(g: usize, local: usize, view: &ClusterView) -> bool {
    view.nodes
        .iter()
        .enumerate()
        .any(|(i, n)| i != local && n.alive && n.held.contains(g))
}

#[cfg(test)]
mod tests {
    use super::*;
    use AutoFailback::{Off, On};

    fn up() -> NodeView {
        NodeView {
            alive: true,
            participating: true,
            ..Default::default()
        }
    }

    fn set(i: &[usize]) -> GroupSet {
        GroupSet::from_indices(i.iter().copied())
    }

    /// (description, nodes, preferred, mode, expected holder of group 0)
    #[test]
    fn placement_table() {
        let dead = NodeView::default();
        let holds = NodeView {
            held: set(&[0]),
            ..up()
        };
        let standby = NodeView {
            standby: set(&[0]),
            ..up()
        };
        let failed = NodeView {
            failed: set(&[0]),
            ..up()
        };
        let init = NodeView {
            alive: true,
            participating: false,
            ..Default::default()
        };
        let ping = |n: u16, v: NodeView| NodeView { ping: Some(n), ..v };
        type Case = (
            &'static str,
            Vec<NodeView>,
            usize,
            AutoFailback,
            Option<usize>,
        );
        let cases: Vec<Case> = vec![
            ("on: preferred up", vec![up(), up()], 0, On, Some(0)),
            (
                "on: preferred dead -> other",
                vec![dead.clone(), up()],
                0,
                On,
                Some(1),
            ),
            (
                "on: failback to preferred although other holds",
                vec![up(), holds.clone()],
                0,
                On,
                Some(0),
            ),
            (
                "off: holder keeps it (nice failback)",
                vec![up(), holds.clone()],
                0,
                Off,
                Some(1),
            ),
            (
                "off: nobody holds -> preferred",
                vec![up(), up()],
                0,
                Off,
                Some(0),
            ),
            (
                "off: preferred dead -> first candidate",
                vec![dead.clone(), up(), up()],
                0,
                Off,
                Some(1),
            ),
            (
                "on: third node does not steal from holder",
                vec![dead.clone(), up(), holds.clone()],
                0,
                On,
                Some(2),
            ),
            (
                "split brain, on: preferred wins",
                vec![holds.clone(), holds.clone()],
                1,
                On,
                Some(1),
            ),
            (
                "split brain, off: preferred among holders wins",
                vec![holds.clone(), holds.clone()],
                1,
                Off,
                Some(1),
            ),
            (
                "split brain, off: else lowest index",
                vec![up(), holds.clone(), holds.clone()],
                0,
                Off,
                Some(1),
            ),
            (
                "standby moves it away",
                vec![standby.clone(), up()],
                0,
                On,
                Some(1),
            ),
            (
                "standby is a preference, not an outage",
                vec![standby.clone(), dead.clone()],
                0,
                On,
                Some(0),
            ),
            (
                "failed node is not a candidate",
                vec![failed.clone(), up()],
                0,
                On,
                Some(1),
            ),
            (
                "failed everywhere -> nobody",
                vec![failed.clone(), failed.clone()],
                0,
                On,
                None,
            ),
            (
                "init/mismatched nodes do not participate",
                vec![init.clone(), up()],
                0,
                On,
                Some(1),
            ),
            ("all dead", vec![dead.clone(), dead.clone()], 0, On, None),
            (
                "ipfail: preferred lost its ping targets",
                vec![ping(0, up()), ping(1, up())],
                0,
                On,
                Some(1),
            ),
            (
                "ipfail: equal reachability keeps preference",
                vec![ping(1, up()), ping(1, up())],
                0,
                On,
                Some(0),
            ),
            (
                "ipfail: everyone lost pings -> preference",
                vec![ping(0, up()), ping(0, up())],
                0,
                On,
                Some(0),
            ),
        ];
        for (name, nodes, pref, mode, want) in cases {
            let view = ClusterView { nodes };
            assert_eq!(desired_holder(0, pref, mode, &view), want, "{name}");
        }
    }

    #[test]
    fn active_active_two_groups() {
        // FAQ q8: group 0 prefers node 0, group 1 prefers node 1.
        let view = ClusterView {
            nodes: vec![up(), up()],
        };
        assert_eq!(desired_holder(0, 0, On, &view), Some(0));
        assert_eq!(desired_holder(1, 1, On, &view), Some(1));
        let one_dead = ClusterView {
            nodes: vec![up(), NodeView::default()],
        };
        assert_eq!(desired_holder(1, 1, On, &one_dead), Some(0));
    }

    #[test]
    fn joining_nodes_hold_back_starts_only() {
        let joining = NodeView {
            alive: true,
            joining: true,
            ..Default::default()
        };
        let view = ClusterView {
            nodes: vec![up(), joining],
        };
        assert_eq!(
            desired_holder(1, 1, On, &view),
            Some(0),
            "node 1 cannot hold yet"
        );
        let joined = view.with_joining().expect("node 1 is joining");
        assert_eq!(
            desired_holder(1, 1, On, &joined),
            Some(1),
            "but it will: do not grab it"
        );
        assert_eq!(desired_holder(0, 0, On, &joined), Some(0));
        assert_eq!(
            ClusterView {
                nodes: vec![up(), up()]
            }
            .with_joining(),
            None
        );
    }

    #[test]
    fn held_elsewhere_ignores_dead_and_self() {
        let view = ClusterView {
            nodes: vec![
                NodeView {
                    held: set(&[0]),
                    ..up()
                },
                NodeView {
                    held: set(&[1]),
                    alive: false,
                    ..Default::default()
                },
            ],
        };
        assert!(!held_elsewhere(0, 0, &view));
        assert!(held_elsewhere(0, 1, &view));
        assert!(!held_elsewhere(1, 0, &view), "dead nodes' claims are void");
    }
}
