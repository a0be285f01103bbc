//! Executes the resource manager's operations against the system.
//!
//! - Heartbeat/LSB scripts: `start` is skipped when `status` already says
//!   running (Heartbeat's ResourceManager does the same), then `start`,
//!   `stop`, `status`.
//! - OCF agents: `start`, `stop`, `monitor` with the OCF environment.
//! - IP addresses: consecutive IP resources of a group are handled as one
//!   netlink batch (FAQ q6). The manager still asks for them one at a time;
//!   the first request does the whole run and the others are answered from
//!   the batch. If the manager changes direction before consuming the batch
//!   (e.g. a start is rolled back), addresses it never acknowledged are
//!   removed at once, so nothing is left half-configured.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use super::{
    agent::{self, Flavor, Invocation},
    arp,
    ipaddr::{self, Addr, AddrOp},
    manager::{OpKind, OpOutcome, OpRequest},
};
use crate::config::{Config, ResourceKind};

/// Results of a batch not yet handed to the manager, per group.
#[derive(Default)]
struct Batch {
    op: Option<OpKind>,
    /// Resource index -> outcome.
    done: HashMap<usize, OpOutcome>,
    /// Addresses added by a start batch and not yet acknowledged.
    unacked: HashMap<usize, Addr>,
}

pub struct Runner {
    cfg: Arc<Config>,
    env: HashMap<String, String>,
    batches: Mutex<HashMap<usize, Batch>>,
}

impl Runner {
    pub fn new(cfg: Arc<Config>) -> Self {
        let env = agent::heartbeat_env(cfg.local_name(), &cfg.dir, &cfg.resources.rsctmp_dir);
        Runner {
            cfg,
            env,
            batches: Mutex::new(HashMap::new()),
        }
    }

    fn timeout(&self, op: OpKind) -> Duration {
        let r = &self.cfg.resources;
        match op {
            OpKind::Start => r.start_timeout,
            OpKind::Stop => r.stop_timeout,
            OpKind::Monitor => r.monitor_timeout,
        }
    }

    /// Runs one operation to completion.
    pub async fn run(&self, req: &OpRequest) -> OpOutcome {
        let res = &self.cfg.groups[req.group].resources[req.resource];
        match &res.kind {
            ResourceKind::Ip(_) => self.run_ip(req).await,
            ResourceKind::Script { name, args, path } => {
                let inv = Invocation {
                    program: path.clone(),
                    args: args.clone(),
                    env: self.env.clone(),
                    timeout: self.timeout(req.op),
                    name: name.clone(),
                };
                if req.op == OpKind::Start {
                    // Heartbeat: do not start what already runs.
                    if let OpOutcome::Success =
                        self.exec(&inv, Flavor::Heartbeat, OpKind::Monitor).await
                    {
                        log::info!("resource {name} already running; start skipped");
                        return OpOutcome::Success;
                    }
                }
                self.exec(&inv, Flavor::Heartbeat, req.op).await
            }
            ResourceKind::Ocf(spec) => {
                let interval = if req.op == OpKind::Monitor {
                    self.cfg.resources.monitor_interval
                } else {
                    Duration::ZERO
                };
                let inv = Invocation {
                    program: self
                        .cfg
                        .resources
                        .ocf_root
                        .join("resource.d")
                        .join(&spec.provider)
                        .join(&spec.agent),
                    args: Vec::new(),
                    env: agent::ocf_env(
                        &self.env,
                        &self.cfg.resources.ocf_root,
                        spec,
                        self.timeout(req.op),
                        interval,
                    ),
                    timeout: self.timeout(req.op),
                    name: format!("ocf:{}:{} ({})", spec.provider, spec.agent, spec.instance),
                };
                self.exec(&inv, Flavor::Ocf, req.op).await
            }
        }
    }

    async fn exec(&self, inv: &Invocation, flavor: Flavor, op: OpKind) -> OpOutcome {
        let verb = agent::verb(flavor, op);
        match agent::run(inv, verb).await {
            Ok(r) => {
                let o = agent::interpret(&inv.name, flavor, op, &r);
                log::debug!(
                    "{} {verb}: exit {:?} in {:?} -> {o:?}",
                    inv.name,
                    r.code,
                    r.elapsed
                );
                o
            }
            Err(e) => OpOutcome::Failed(format!("cannot run {}: {e}", inv.program.display())),
        }
    }

    /// Indices of the run of IP resources containing `r`, in the direction
    /// the manager walks for `op` (right for start/monitor, left for stop).
    fn ip_run(&self, g: usize, r: usize, op: OpKind) -> Vec<usize> {
        let res = &self.cfg.groups[g].resources;
        let is_ip = |i: usize| matches!(res[i].kind, ResourceKind::Ip(_));
        let mut v = vec![r];
        if op == OpKind::Stop {
            let mut i = r;
            while i > 0 && is_ip(i - 1) {
                i -= 1;
                v.push(i);
            }
        } else {
            let mut i = r;
            while i + 1 < res.len() && is_ip(i + 1) {
                i += 1;
                v.push(i);
            }
        }
        v
    }

    fn spec(&self, g: usize, r: usize) -> &crate::config::IpSpec {
        match &self.cfg.groups[g].resources[r].kind {
            ResourceKind::Ip(s) => s,
            _ => unreachable!("ip_run only returns IP resources"),
        }
    }

    async fn run_ip(&self, req: &OpRequest) -> OpOutcome {
        let (g, r, op) = (req.group, req.resource, req.op);
        // Answer from a pending batch, or undo a batch we turned away from.
        let undo = {
            let mut batches = self.batches.lock().unwrap();
            let b = batches.entry(g).or_default();
            if b.op == Some(op) {
                if let Some(o) = b.done.remove(&r) {
                    b.unacked.remove(&r);
                    return o;
                }
            }
            b.op = Some(op);
            b.done.clear();
            std::mem::take(&mut b.unacked)
                .into_values()
                .collect::<Vec<_>>()
        };
        if !undo.is_empty() {
            log::info!(
                "group {g}: removing {} address(es) added by an abandoned start",
                undo.len()
            );
            if let Err(e) = tokio::task::spawn_blocking(move || ipaddr::apply(AddrOp::Del, &undo))
                .await
                .unwrap()
            {
                log::error!("group {g}: undoing abandoned addresses: {e}");
            }
        }
        let run = self.ip_run(g, r, op);
        // Resolve every address of the run; a failure fails the first one
        // that cannot be resolved (earlier ones still proceed).
        let mut addrs = Vec::new();
        let mut resolve_err: Option<(usize, String)> = None;
        let snapshot = crate::netif::addresses();
        for &i in &run {
            match ipaddr::resolve_in(self.spec(g, i), &snapshot) {
                Ok(a) => addrs.push((i, a)),
                Err(e) => {
                    resolve_err = Some((i, e.to_string()));
                    break;
                }
            }
        }
        if let Some((i, e)) = &resolve_err {
            if *i == r {
                return match op {
                    // A stop of an address on a vanished interface is done.
                    OpKind::Stop
                        if self
                            .spec(g, r)
                            .ifname
                            .as_ref()
                            .is_some_and(|n| crate::netif::ifindex(n).is_none()) =>
                    {
                        OpOutcome::Success
                    }
                    OpKind::Monitor => OpOutcome::NotRunning,
                    _ => OpOutcome::Failed(e.clone()),
                };
            }
        }
        let list: Vec<Addr> = addrs.iter().map(|(_, a)| a.clone()).collect();
        let outcomes: Vec<OpOutcome> = match op {
            OpKind::Start | OpKind::Stop => {
                if op == OpKind::Start {
                    let ifs: HashSet<String> = list
                        .iter()
                        .filter(|a| a.addr.is_ipv4())
                        .map(|a| a.ifname.clone())
                        .collect();
                    for i in ifs {
                        if let Err(e) = ipaddr::promote_secondaries(&i) {
                            log::warn!("cannot enable promote_secondaries on {i}: {e}; removing a primary address may drop secondaries");
                        }
                    }
                }
                let aop = if op == OpKind::Start {
                    AddrOp::Add
                } else {
                    AddrOp::Del
                };
                let l = list.clone();
                match tokio::task::spawn_blocking(move || ipaddr::apply(aop, &l))
                    .await
                    .unwrap()
                {
                    Ok(rs) => rs
                        .into_iter()
                        .map(|x| match x {
                            Ok(()) => OpOutcome::Success,
                            Err(e) => OpOutcome::Failed(e.to_string()),
                        })
                        .collect(),
                    Err(e) => return OpOutcome::Failed(e.to_string()),
                }
            }
            OpKind::Monitor => {
                let l = list.clone();
                match tokio::task::spawn_blocking(move || ipaddr::present(&l))
                    .await
                    .unwrap()
                {
                    Ok(p) => p
                        .into_iter()
                        .map(|up| {
                            if up {
                                OpOutcome::Success
                            } else {
                                OpOutcome::NotRunning
                            }
                        })
                        .collect(),
                    Err(e) => return OpOutcome::Failed(e.to_string()),
                }
            }
        };
        if op == OpKind::Start {
            let added: Vec<Addr> = list
                .iter()
                .zip(&outcomes)
                .filter(|(_, o)| **o == OpOutcome::Success)
                .map(|(a, _)| a.clone())
                .collect();
            log::info!(
                "group {g}: added {} address(es) in one netlink batch",
                added.len()
            );
            arp::announce(
                added,
                self.cfg.resources.arp_count,
                self.cfg.resources.arp_interval,
            )
            .await;
        } else if op == OpKind::Stop {
            log::info!(
                "group {g}: removed {} address(es) in one netlink batch",
                list.len()
            );
        }
        let mut first = None;
        let mut batches = self.batches.lock().unwrap();
        let b = batches.entry(g).or_default();
        for ((i, a), o) in addrs.into_iter().zip(outcomes) {
            if i == r {
                first = Some(o);
            } else {
                if op == OpKind::Start && o == OpOutcome::Success {
                    b.unacked.insert(i, a);
                }
                b.done.insert(i, o);
            }
        }
        first.unwrap_or_else(|| OpOutcome::Failed("internal: batch lost its first address".into()))
    }

    /// Re-announces the addresses of a group (after a healed split brain).
    pub async fn refresh(&self, g: usize) {
        let snapshot = crate::netif::addresses();
        let addrs: Vec<Addr> = self.cfg.groups[g]
            .resources
            .iter()
            .filter_map(|r| match &r.kind {
                ResourceKind::Ip(s) => ipaddr::resolve_in(s, &snapshot).ok(),
                _ => None,
            })
            .collect();
        if !addrs.is_empty() {
            log::info!("group {g}: re-announcing {} address(es)", addrs.len());
            arp::announce(
                addrs,
                self.cfg.resources.arp_count,
                self.cfg.resources.arp_interval,
            )
            .await;
        }
    }
}
