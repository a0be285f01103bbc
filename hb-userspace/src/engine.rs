//! The daemon: wires the pure [`NodeCore`] to sockets, the XDP ring, serial
//! links, ping, scripts, the control socket and signals.
//!
//! ```text
//!   XDP program --(ring: arrival ktime)------------+
//!   UDP sockets --(datagram + SO_TIMESTAMPNS)------+
//!   serial reader threads --(frames, mpsc)---------+
//!   ping task --(replies, mpsc)--------------------+
//!   control socket task --(requests, mpsc)---------+--> engine task
//!   op tasks --(resource op results, mpsc)---------+    (owns NodeCore)
//!   signals (TERM/INT: release and exit, HUP: reload authkeys)
//!                                                        |
//!     engine --(Run op)--> tokio task: Runner (scripts, OCF, rtnetlink, GARP)
//!     engine --(status + payload, Mutex+Condvar)--> hb-sender thread
//!                                (SCHED_FIFO) --> UDP media, serial writers
//!     engine --(trace lines, broadcast)--> `hb trace` clients
//! ```
//!
//! Ordering rule: whenever the engine wakes, it first drains the XDP ring,
//! then every socket and the serial queue, and only then lets the core look
//! at timers. A daemon that was starved therefore judges its peers by when
//! their heartbeats *arrived* (kernel timestamps), not by when it got to run.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    task::Poll,
    time::Duration,
};

use aya::maps::{MapData, RingBuf};
use hb_common::wire::Status;
use tokio::{
    io::unix::AsyncFd,
    signal::unix::{signal, SignalKind},
    sync::{broadcast, mpsc, watch},
};

use crate::{
    config::{self, Config, Medium, TimestampSource},
    control::{self, Incoming, Reply, Request},
    gapstats::GapStats,
    generation,
    groupset::GroupSet,
    membership::{Arrival, NodeState},
    net::{
        ping::{self, PingTracker},
        serial::{self, SerialFrame},
        udp::{self, Datagram, RxSocket},
    },
    node::{CoreAction, CoreConfig, NodeCore},
    proto::{self, ReplayVerdict},
    resources::{manager::OpOutcome, runner::Runner},
    sender::{Outgoing, Sender, SenderConfig},
    status::{GroupStatus, LinkStatus, NodeStatus, StatusReport, TimestampStatus, TraceEvent},
    time::{as_ms, realtime_to_mono, Mono},
    xdp::{FastPath, XdpSettings},
};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    Generation(#[from] generation::GenerationError),
    #[error("XDP is required (`timestamps xdp`) but unavailable: {0}")]
    XdpRequired(String),
    #[error("{0}")]
    Media(#[from] udp::MediaError),
    #[error("{0}")]
    Serial(#[from] serial::SerialError),
    #[error("{0}")]
    Control(#[from] control::ControlError),
    #[error("{what}: {err}")]
    Io { what: String, err: std::io::Error },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> EngineError {
    let what = what.into();
    move |err| EngineError::Io { what, err }
}

impl std::os::fd::AsRawFd for RxSocket {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.sock.as_raw_fd()
    }
}

type RingKey = (u32, u64, u64, u32);

struct Engine {
    cfg: Arc<Config>,
    core: NodeCore,
    started: Mono,
    generation: u64,
    keys: config::AuthKeys,
    source: TimestampSource,
    ts_status: TimestampStatus,
    fast: Option<FastPath>,
    ring: Option<AsyncFd<RingBuf<MapData>>>,
    ring_match: HashMap<RingKey, (u64, [u8; 4])>,
    rx: Vec<AsyncFd<RxSocket>>,
    media_index: udp::MediaIndex,
    /// Our addresses (re-read at most once a second), to tell our own
    /// looped-back heartbeats from another machine using our node name.
    local_addrs: (Mono, Vec<std::net::IpAddr>),
    serial_rx: mpsc::Receiver<SerialFrame>,
    sender: Option<Sender>,
    runner: Arc<Runner>,
    op_tx: mpsc::Sender<(usize, OpOutcome)>,
    op_rx: mpsc::Receiver<(usize, OpOutcome)>,
    ping: Option<(PingTracker, mpsc::Receiver<(usize, Mono)>)>,
    ctl_rx: mpsc::Receiver<Incoming>,
    trace_tx: broadcast::Sender<String>,
    counters: BTreeMap<&'static str, u64>,
    last_out: Option<(Status, proto::Payload)>,
    last_warn: HashMap<&'static str, Mono>,
    stop_children: watch::Sender<bool>,
    buf: Vec<u8>,
    serial_dropped: Vec<Arc<std::sync::atomic::AtomicU64>>,
    /// Gap histograms of earlier runs (same timestamp source), for `hb tune`.
    gap_history: BTreeMap<String, GapStats>,
    last_persist: Mono,
}

/// Gap histograms kept across restarts (`state_dir/gaps.json`).
#[derive(serde::Serialize, serde::Deserialize)]
struct GapHistory {
    source: String,
    nodes: BTreeMap<String, GapStats>,
}

fn load_gap_history(state_dir: &std::path::Path, source: &str) -> BTreeMap<String, GapStats> {
    let path = state_dir.join("gaps.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return BTreeMap::new();
    };
    match serde_json::from_str::<GapHistory>(&text) {
        Ok(h) if h.source == source => h.nodes,
        Ok(h) => {
            log::info!(
                "{}: gaps were recorded with {} timestamps, now {source}: starting a new history",
                path.display(),
                h.source
            );
            BTreeMap::new()
        }
        Err(e) => {
            log::warn!(
                "{}: unreadable gap history ({e}); starting a new one",
                path.display()
            );
            BTreeMap::new()
        }
    }
}

/// Runs the daemon until a graceful shutdown completes.
pub async fn run(cfg: Config) -> Result<(), EngineError> {
    let mut e = Engine::setup(cfg).await?;
    let r = e.main_loop().await;
    e.teardown();
    r
}

impl Engine {
    async fn setup(cfg: Config) -> Result<Engine, EngineError> {
        for w in &cfg.warnings {
            log::warn!("{w}");
        }
        let cfg = Arc::new(cfg);
        let generation = generation::next(cfg.genmethod, &cfg.state_dir)?;
        log::info!(
            "hb starting: node {} of cluster {} (id {:#010x}), generation {generation}, {} node(s), {} resource group(s)",
            cfg.local_name(),
            cfg.cluster_name,
            cfg.cluster_id,
            cfg.nodes.len(),
            cfg.groups.len()
        );
        if cfg.realtime {
            // SAFETY: plain mlockall(2).
            if unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) } != 0 {
                log::warn!(
                    "cannot lock memory (mlockall): {}; paging may delay heartbeats",
                    std::io::Error::last_os_error()
                );
            }
        }
        if let Err(e) = std::fs::create_dir_all(&cfg.resources.rsctmp_dir) {
            log::warn!(
                "cannot create {} (HA_RSCTMP for resource agents): {e}",
                cfg.resources.rsctmp_dir.display()
            );
        }

        // Arrival timestamps: XDP first, kernel socket timestamps otherwise.
        let port = cfg.udp_port();
        let ifaces = cfg.udp_interfaces();
        let mut source = cfg.timestamps;
        let mut ts_status = TimestampStatus::default();
        let mut fast = None;
        if matches!(source, TimestampSource::Auto | TimestampSource::Xdp) && !ifaces.is_empty() {
            match Self::load_xdp(&cfg, port, &ifaces) {
                Ok(f) => {
                    for a in f.attachments() {
                        log::info!(
                            "XDP fast path attached to {} in {} mode",
                            a.ifname,
                            a.mode.as_str()
                        );
                        ts_status
                            .xdp_interfaces
                            .push((a.ifname.clone(), a.mode.as_str().to_string()));
                    }
                    fast = Some(f);
                    source = TimestampSource::Xdp;
                }
                Err(reason) if source == TimestampSource::Xdp => {
                    return Err(EngineError::XdpRequired(reason))
                }
                Err(reason) => {
                    log::warn!("XDP fast path unavailable ({reason}); falling back to kernel socket timestamps (SO_TIMESTAMPNS)");
                    ts_status.fallback_reason = Some(reason);
                    source = TimestampSource::Kernel;
                }
            }
        } else if source == TimestampSource::Auto {
            source = TimestampSource::Kernel;
        }
        ts_status.source = match source {
            TimestampSource::Xdp => "xdp",
            TimestampSource::Kernel | TimestampSource::Auto => "kernel",
            TimestampSource::Userspace => "userspace",
        }
        .into();
        let mut ring = None;
        if let Some(f) = fast.as_mut() {
            if let Some(r) = f.take_ring() {
                ring = Some(crate::util::async_fd(r).map_err(io("XDP ring buffer"))?);
            }
            if let Some(logger) = f.logger() {
                let mut logger = crate::util::async_fd(logger).map_err(io("XDP log ring"))?;
                tokio::spawn(async move {
                    loop {
                        let Ok(mut g) = logger.readable_mut().await else {
                            return;
                        };
                        g.get_inner_mut().flush();
                        g.clear_ready();
                    }
                });
            }
        }

        let rx = udp::open_receivers(&cfg.media, port)?
            .into_iter()
            .map(|s| crate::util::async_fd(s).map_err(io("registering a socket")))
            .collect::<Result<Vec<_>, _>>()?;
        let targets = udp::open_senders(&cfg.media)?;
        let (serial_tx, serial_rx) = mpsc::channel(256);
        let mut serial_links = Vec::new();
        for (link, m) in cfg.media.iter().enumerate() {
            if let Medium::Serial { device, baud } = &m.medium {
                serial_links.push(serial::open(
                    link,
                    device,
                    *baud,
                    cfg.cluster_id,
                    serial_tx.clone(),
                )?);
                log::info!("serial link {} at {baud} baud", device.display());
            }
        }
        let serial_dropped = serial_links.iter().map(|s| s.dropped.clone()).collect();

        let (ctl_tx, ctl_rx) = mpsc::channel(16);
        control::serve(&cfg.control_socket, ctl_tx).await?;

        let now = Mono::now();
        let core = NodeCore::new(CoreConfig::from_config(&cfg), now);
        let keys = cfg.auth.clone();
        let sender = Sender::start(
            SenderConfig {
                cluster_id: cfg.cluster_id,
                node_id: cfg.node_id(cfg.local),
                generation,
                keepalive: cfg.timing.keepalive,
                rtprio: cfg.realtime.then_some(cfg.rtprio),
            },
            Outgoing {
                status: core.status(),
                payload: core.payload(),
            },
            keys.clone(),
            targets,
            serial_links,
        )
        .map_err(io("starting the sender thread"))?;

        let ping = if cfg.ping.is_empty() {
            None
        } else {
            let (tx, rx) = mpsc::channel(256);
            let interval =
                (cfg.deadping / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
            let targets = cfg.ping.clone();
            tokio::spawn(async move {
                if let Err(e) = ping::run(targets, interval, tx).await {
                    log::error!("ping targets: {e}; ping reachability will read as 0");
                }
            });
            Some((PingTracker::new(cfg.ping.len(), cfg.deadping, now), rx))
        };

        let (stop_children, stop_rx) = watch::channel(false);
        for r in &cfg.respawn {
            tokio::spawn(respawn(r.clone(), stop_rx.clone()));
        }

        let (op_tx, op_rx) = mpsc::channel(256);
        let gap_history = load_gap_history(&cfg.state_dir, &ts_status.source);
        let media_index = udp::MediaIndex::new(&cfg.media);
        let local_addrs = (now, crate::netif::local_addrs());
        Ok(Engine {
            runner: Arc::new(Runner::new(cfg.clone())),
            cfg,
            core,
            started: now,
            generation,
            keys,
            source,
            ts_status,
            fast,
            ring,
            ring_match: HashMap::new(),
            rx,
            media_index,
            local_addrs,
            serial_rx,
            sender: Some(sender),
            op_tx,
            op_rx,
            ping,
            ctl_rx,
            trace_tx: broadcast::channel(4096).0,
            counters: BTreeMap::new(),
            last_out: None,
            last_warn: HashMap::new(),
            stop_children,
            buf: vec![0u8; 65536],
            serial_dropped,
            gap_history,
            last_persist: now,
        })
    }

    fn load_xdp(cfg: &Config, port: u16, ifaces: &[String]) -> Result<FastPath, String> {
        let mut f = FastPath::load(XdpSettings {
            port,
            cluster_id: cfg.cluster_id,
            log_level: if cfg.debug > 0 { 4 } else { 2 },
        })
        .map_err(|e| e.to_string())?;
        for i in ifaces {
            f.attach(i).map_err(|e| e.to_string())?;
        }
        for n in 0..cfg.nodes.len() {
            f.register_node(cfg.node_id(n)).map_err(|e| e.to_string())?;
        }
        Ok(f)
    }

    /// Whether `ip` is one of our addresses (cached; re-read when the
    /// cache is older than 1 s and does not contain it).
    fn is_local_addr(&mut self, ip: std::net::IpAddr) -> bool {
        if self.local_addrs.1.contains(&ip) {
            return true;
        }
        let now = Mono::now();
        if now.since(self.local_addrs.0) >= Duration::from_secs(1) {
            self.local_addrs = (now, crate::netif::local_addrs());
            return self.local_addrs.1.contains(&ip);
        }
        false
    }

    fn count(&mut self, k: &'static str) {
        *self.counters.entry(k).or_default() += 1;
    }

    /// Logs at most once per 10 s per kind.
    fn warn_limited(&mut self, kind: &'static str, msg: impl FnOnce() -> String) {
        let now = Mono::now();
        if self
            .last_warn
            .get(kind)
            .is_none_or(|t| now.since(*t) >= Duration::from_secs(10))
        {
            self.last_warn.insert(kind, now);
            log::warn!("{} (further ones counted, see `hb status`)", msg());
        }
    }

    async fn main_loop(&mut self) -> Result<(), EngineError> {
        let mut sigterm = signal(SignalKind::terminate()).map_err(io("signals"))?;
        let mut sigint = signal(SignalKind::interrupt()).map_err(io("signals"))?;
        let mut sighup = signal(SignalKind::hangup()).map_err(io("signals"))?;
        let mut housekeeping = tokio::time::interval(Duration::from_millis(100));
        let mut shutdown_requested = false;
        self.execute_actions();
        loop {
            let deadline = self.core.next_deadline();
            let sleep_for = deadline.map_or(Duration::from_secs(3600), |d| d.since(Mono::now()));
            tokio::select! {
                biased;
                _ = sigterm.recv() => self.request_shutdown(&mut shutdown_requested),
                _ = sigint.recv() => self.request_shutdown(&mut shutdown_requested),
                _ = sighup.recv() => self.reload_authkeys(),
                Some((g, o)) = self.op_rx.recv() => {
                    self.drain_inputs();
                    self.core.handle_op_result(Mono::now(), g, o);
                }
                Some(inc) = self.ctl_rx.recv() => self.handle_control(inc),
                Some(f) = self.serial_rx.recv() => self.handle_serial(f),
                _ = std::future::poll_fn(|cx| poll_inputs(&self.rx, self.ring.as_ref(), cx)) => {}
                Some((t, at)) = async { match self.ping.as_mut() { Some((_, rx)) => rx.recv().await, None => std::future::pending().await } } => {
                    if let Some((tr, _)) = self.ping.as_mut() { tr.reply(t, at) }
                }
                _ = tokio::time::sleep(sleep_for) => {}
                _ = housekeeping.tick() => self.housekeeping(),
            }
            // Read everything that arrived before judging anyone by timers.
            self.drain_inputs();
            let now = Mono::now();
            if self.core.next_deadline().is_some_and(|d| d <= now) {
                self.core.handle_timeout(now);
            }
            if let Some((tr, _)) = &self.ping {
                let n = tr.reachable(now);
                self.core.set_ping_reachable(now, n);
            }
            if self.execute_actions() {
                return Ok(());
            }
        }
    }

    fn request_shutdown(&mut self, already: &mut bool) {
        if *already {
            log::warn!("shutdown already in progress: still releasing resources (send SIGKILL to abort, leaving them configured)");
            return;
        }
        *already = true;
        self.core.shutdown(Mono::now());
    }

    fn reload_authkeys(&mut self) {
        let path = self.cfg.dir.join("authkeys");
        match config::authkeys::load(&path) {
            Ok(k) => {
                for w in &k.warnings {
                    log::warn!("{w}");
                }
                log::info!(
                    "authkeys reloaded: sending with key {}, accepting {} key(s)",
                    k.send,
                    k.keys.len()
                );
                if let Some(s) = &self.sender {
                    s.set_keys(k.clone());
                }
                self.keys = k;
            }
            Err(e) => log::error!("authkeys not reloaded, keeping the current keys: {e}"),
        }
    }

    /// This run's gaps merged into the recorded history, per node.
    fn merged_gaps(&self) -> BTreeMap<String, GapStats> {
        let m = self.core.membership();
        let mut all = self.gap_history.clone();
        for (i, p) in m.peers().iter().enumerate() {
            if i != m.local() && p.gaps.count > 0 {
                all.entry(p.name.clone()).or_default().merge(&p.gaps);
            }
        }
        all
    }

    /// Writes the merged gap history (atomically) to `state_dir/gaps.json`.
    fn persist_gaps(&mut self) {
        self.last_persist = Mono::now();
        let h = GapHistory {
            source: self.ts_status.source.clone(),
            nodes: self.merged_gaps(),
        };
        let path = self.cfg.state_dir.join("gaps.json");
        let tmp = self.cfg.state_dir.join("gaps.json.tmp");
        let r = std::fs::write(&tmp, serde_json::to_vec(&h).expect("serializes"))
            .and_then(|_| std::fs::rename(&tmp, &path));
        if let Err(e) = r {
            self.warn_limited("gaps", || {
                format!("cannot save the gap history to {}: {e}", path.display())
            });
        }
    }

    fn housekeeping(&mut self) {
        if Mono::now().since(self.last_persist) >= Duration::from_secs(60) {
            self.persist_gaps();
        }
        // Ring records whose datagram never reached us (dropped by the socket
        // or rejected) must not accumulate.
        let now = Mono::now().as_nanos();
        let before = self.ring_match.len();
        self.ring_match
            .retain(|_, (t, _)| now.saturating_sub(*t) < 5_000_000_000);
        let stale = before - self.ring_match.len();
        if stale > 0 {
            *self.counters.entry("xdp_unmatched_records").or_default() += stale as u64;
        }
    }

    fn drain_inputs(&mut self) {
        self.drain_ring();
        for i in 0..self.rx.len() {
            let ifname = self.rx[i].get_ref().ifname.clone();
            loop {
                let r = udp::recv(self.rx[i].get_ref(), &mut self.buf);
                match r {
                    Ok(Some(d)) => {
                        // The XDP record of this datagram may have been
                        // written after our last ring drain.
                        if self.source == TimestampSource::Xdp {
                            self.drain_ring();
                        }
                        self.handle_datagram(d, &ifname);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        self.warn_limited("recv", || format!("receiving heartbeats: {e}"));
                        break;
                    }
                }
            }
        }
        while let Ok(f) = self.serial_rx.try_recv() {
            self.handle_serial(f);
        }
    }

    fn drain_ring(&mut self) {
        let Some(ring) = self.ring.as_mut() else {
            return;
        };
        let m = &mut self.ring_match;
        crate::xdp::drain(ring.get_mut(), |r| {
            if m.len() < 65536 {
                m.insert(
                    (r.node_id, r.generation, r.seq, r.ifindex),
                    (r.ktime_ns, r.mac_tag),
                );
            }
        });
    }

    fn handle_serial(&mut self, f: SerialFrame) {
        self.accept(&f.data, Some(f.link), None, None, f.read_at, None);
    }

    fn handle_datagram(&mut self, d: Datagram, ifname: &str) {
        let link = self.media_index.medium_of(ifname, &d);
        self.accept(
            &d.data,
            link,
            Some(d.ifindex),
            d.kernel_ts,
            d.read_at,
            Some(d.src.ip()),
        );
    }

    fn accept(
        &mut self,
        data: &[u8],
        link: Option<usize>,
        ifindex: Option<u32>,
        kernel_ts: Option<u64>,
        read_at: Mono,
        src: Option<std::net::IpAddr>,
    ) {
        let hb = match proto::decode(data, self.cfg.cluster_id, &self.keys) {
            Ok(hb) => hb,
            Err(e) => {
                let kind = e.counter();
                self.count(kind);
                self.warn_limited(kind, || {
                    format!(
                        "dropped a heartbeat{}: {e}",
                        src.map_or(String::new(), |s| format!(" from {s}"))
                    )
                });
                return;
            }
        };
        let Some(node) = self.cfg.node_index(&hb.payload.node_name) else {
            self.count("unknown_node");
            let name = hb.payload.node_name.clone();
            self.warn_limited("unknown_node", || {
                format!("heartbeat from node `{name}`, which is not a `node` in ha.cf")
            });
            return;
        };
        if node == self.cfg.local {
            if src.is_some_and(|s| !self.is_local_addr(s)) {
                self.count("name_conflict");
                let me = self.cfg.local_name().to_string();
                self.warn_limited("name_conflict", || {
                    format!("another machine ({}) sends heartbeats as this node ({me}): node names must be unique", src.unwrap())
                });
            }
            return; // our own broadcast/multicast looped back
        }
        let Some(link) = link else {
            self.count("unknown_medium");
            return;
        };
        let h = hb.header;
        let kernel_mono = kernel_ts.map(realtime_to_mono);
        // The socket's own stamp: the kernel's if it gave one, else read time.
        let socket_stamp = match kernel_mono {
            Some(k) => (k, "kernel"),
            None => (read_at, "userspace"),
        };
        let (at, source) = match self.source {
            TimestampSource::Xdp => {
                let key = (h.node_id, h.generation, h.seq, ifindex.unwrap_or(0));
                let mac = proto::packet::mac_of(data, &h);
                match self.ring_match.remove(&key) {
                    Some((t, tag)) if mac.get(..4) == Some(&tag[..]) => {
                        (Mono::from_nanos(t), "xdp")
                    }
                    other => {
                        if other.is_some() {
                            self.count("xdp_tag_mismatch");
                        } else if ifindex.is_some() {
                            self.count("xdp_unmatched_datagrams");
                        }
                        socket_stamp
                    }
                }
            }
            TimestampSource::Kernel | TimestampSource::Auto => socket_stamp,
            TimestampSource::Userspace => (read_at, "userspace"),
        };
        let prev_last = self.core.membership().peer(node).last;
        let name = hb.payload.node_name.clone();
        let arrival = Arrival {
            node,
            link,
            at,
            generation: h.generation,
            seq: h.seq,
            status: h.status,
            payload: hb.payload,
        };
        let now = Mono::now();
        match self.core.handle_heartbeat(now, arrival) {
            ReplayVerdict::Fresh { .. } => {
                self.count("accepted");
                if self.trace_tx.receiver_count() > 0 {
                    let ev = TraceEvent {
                        node: name,
                        link,
                        seq: h.seq,
                        generation: h.generation,
                        arrival_ns: at.as_nanos(),
                        source: source.into(),
                        processed_ns: now.as_nanos(),
                        gap_ns: prev_last
                            .filter(|p| at > *p)
                            .map(|p| at.since(p).as_nanos() as u64),
                        delay_ns: now.since(at).as_nanos() as u64,
                        kernel_ns: kernel_mono.map(|m| m.as_nanos()),
                    };
                    let _ = self
                        .trace_tx
                        .send(serde_json::to_string(&ev).expect("trace serializes"));
                }
            }
            ReplayVerdict::Duplicate => self.count("duplicate"),
            ReplayVerdict::Replay => {
                self.count("replayed");
                self.warn_limited("replayed", || {
                    format!(
                        "dropped a replayed heartbeat of {name} (sequence {} too old)",
                        h.seq
                    )
                });
            }
            ReplayVerdict::OldGeneration => {
                self.count("old_generation");
                self.warn_limited("old_generation", || format!(
                    "dropped a heartbeat of {name} from an older generation ({}): a replay, or its state directory was reset behind a clock jump",
                    h.generation
                ));
            }
        }
    }

    /// Performs the core's actions; true when the daemon should exit.
    fn execute_actions(&mut self) -> bool {
        let mut send_now = false;
        let mut exit = false;
        while let Some(a) = self.core.poll_action() {
            match a {
                CoreAction::Run(req) => {
                    let runner = self.runner.clone();
                    let tx = self.op_tx.clone();
                    let desc = self.cfg.groups[req.group].resources[req.resource]
                        .raw
                        .clone();
                    if req.op == crate::resources::manager::OpKind::Monitor {
                        log::debug!("group {}: monitor {desc}", req.group);
                    } else {
                        log::info!("group {}: {:?} {desc}", req.group, req.op);
                    }
                    tokio::spawn(async move {
                        let o = runner.run(&req).await;
                        match &o {
                            OpOutcome::Failed(e) => {
                                log::error!("group {}: {:?} {desc} failed: {e}", req.group, req.op)
                            }
                            other => {
                                log::debug!("group {}: {:?} {desc}: {other:?}", req.group, req.op)
                            }
                        }
                        let _ = tx.send((req.group, o)).await;
                    });
                }
                CoreAction::SendNow => send_now = true,
                CoreAction::Refresh { group } => {
                    let runner = self.runner.clone();
                    tokio::spawn(async move { runner.refresh(group).await });
                }
                CoreAction::Escalate {
                    group,
                    resource,
                    reason,
                } => {
                    log::error!(
                        "CRITICAL: group {group} resource {resource} cannot be stopped ({reason}); rebooting so that another node can take over safely"
                    );
                    log::logger().flush();
                    nix::unistd::sync();
                    let Err(e) =
                        nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_AUTOBOOT);
                    log::error!("reboot failed: {e}; the group stays blocked on this node");
                }
                CoreAction::Exit => exit = true,
            }
        }
        let out = (self.core.status(), self.core.payload());
        let changed = self.last_out.as_ref() != Some(&out);
        if let Some(s) = &self.sender {
            if exit {
                s.burst(
                    Outgoing {
                        status: Status::Shutdown,
                        payload: out.1.clone(),
                    },
                    3,
                );
            } else if changed || send_now {
                s.update(
                    Outgoing {
                        status: out.0,
                        payload: out.1.clone(),
                    },
                    true,
                );
            }
        }
        self.last_out = Some(out);
        if exit {
            log::info!("all resource groups released; shutdown complete");
        }
        exit
    }

    fn handle_control(&mut self, inc: Incoming) {
        let now = Mono::now();
        let ok = |groups: &GroupSet| serde_json::json!({"ok": true, "groups": groups.iter().collect::<Vec<_>>()});
        let bad_which = |w: &str| serde_json::json!({"ok": false, "error": format!("`{w}`: say all, local or foreign")});
        let reply = match inc.req {
            Request::Status => {
                Reply::Json(serde_json::json!({"ok": true, "status": self.status_report()}))
            }
            Request::Standby { which } => match self.core.group_set(&which) {
                Some(set) => {
                    log::info!("operator: standby {which} (groups {set:?})");
                    self.core.standby(now, &set);
                    Reply::Json(ok(&set))
                }
                None => Reply::Json(bad_which(&which)),
            },
            Request::Takeover { which } => match self.core.group_set(&which) {
                Some(set) => {
                    log::info!("operator: takeover {which} (groups {set:?})");
                    self.core.takeover(now, &set);
                    Reply::Json(ok(&set))
                }
                None => Reply::Json(bad_which(&which)),
            },
            Request::Cleanup { group } => {
                let n = self.cfg.groups.len();
                match group {
                    Some(g) if g >= n => Reply::Json(
                        serde_json::json!({"ok": false, "error": format!("no group {g}: groups are 0..{}", n.saturating_sub(1))}),
                    ),
                    g => {
                        let set =
                            g.map_or_else(|| GroupSet::all(n), |g| GroupSet::from_indices([g]));
                        log::info!("operator: cleanup {set:?}");
                        self.core.cleanup(now, &set);
                        Reply::Json(ok(&set))
                    }
                }
            }
            Request::Gaps => {
                let gaps = self.merged_gaps();
                Reply::Json(
                    serde_json::json!({"ok": true, "source": self.ts_status.source, "keepalive_ms": as_ms(self.cfg.timing.keepalive), "warntime_ms": as_ms(self.cfg.timing.warntime), "deadtime_ms": as_ms(self.cfg.timing.deadtime), "gaps": gaps}),
                )
            }
            Request::Trace => Reply::Stream(self.trace_tx.subscribe()),
        };
        let _ = inc.reply.send(reply);
    }

    fn status_report(&self) -> StatusReport {
        let now = Mono::now();
        let m = self.core.membership();
        let rm = self.core.resources();
        let cfg = &self.cfg;
        let kernel = self.fast.as_ref().map(|f| f.peers()).unwrap_or_default();
        let nodes =
            m.peers()
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let local = i == cfg.local;
                    let payload = if local {
                        Some(self.core.payload())
                    } else {
                        p.payload.clone()
                    };
                    let pl = payload.unwrap_or_default();
                    let links = if local {
                        Vec::new()
                    } else {
                        p.links
                            .iter()
                            .enumerate()
                            .map(|(li, l)| {
                                let medium = &cfg.media[li].medium;
                                let kstate = medium
                                    .ifname()
                                    .and_then(crate::netif::ifindex)
                                    .and_then(|idx| {
                                        kernel
                                            .iter()
                                            .find(|(k, _)| {
                                                k.node_id == cfg.node_id(i) && k.ifindex == idx
                                            })
                                            .map(|(_, s)| *s)
                                    });
                                LinkStatus {
                                    medium: medium.describe(),
                                    up: l.up,
                                    heartbeats: l.count,
                                    last_heard_ms_ago: l.last.map(|t| as_ms(now.since(t))),
                                    last_gap_ms: l.last_gap.map(as_ms),
                                    kernel_heartbeats: kstate.map(|s| s.count),
                                    kernel_max_gap_ms: kstate.map(|s| s.max_gap_ns as f64 / 1e6),
                                }
                            })
                            .collect()
                    };
                    NodeStatus {
                        name: p.name.clone(),
                        local,
                        state: match (local, p.state) {
                            (true, _) | (_, NodeState::Up) => "up",
                            (_, NodeState::Init) => "init",
                            (_, NodeState::Dead) => "dead",
                        }
                        .into(),
                        announced: if local {
                            Some(status_name(self.core.status()))
                        } else {
                            p.status.map(status_name)
                        },
                        generation: if local {
                            Some(self.generation)
                        } else {
                            p.generation()
                        },
                        last_heard_ms_ago: p.last.map(|t| as_ms(now.since(t))),
                        last_gap_ms: p.last_gap.map(as_ms),
                        max_gap_ms: (p.gaps.count > 0).then(|| as_ms(p.gaps.max())),
                        p99_gap_ms: (p.gaps.count > 0).then(|| as_ms(p.gaps.percentile(99.0))),
                        late_gaps: p.late,
                        deaths: p.deaths,
                        heartbeats: p.gaps.count + u64::from(p.last.is_some()),
                        same_config: local || pl.digest == cfg.digest,
                        held: pl.held.iter().collect(),
                        standby: pl.standby.iter().collect(),
                        failed: pl.failed.iter().collect(),
                        ping: pl.ping,
                        links,
                    }
                })
                .collect::<Vec<_>>();
        let groups = cfg
            .groups
            .iter()
            .enumerate()
            .map(|(gi, g)| {
                let rt = &rm.groups()[gi];
                GroupStatus {
                    index: gi,
                    preferred: g.preferred.clone(),
                    resources: g.resources.iter().map(|r| r.raw.clone()).collect(),
                    phase: rt.phase.name().into(),
                    desired: rm.desired(gi).map(|n| cfg.nodes[n].clone()),
                    holders: nodes
                        .iter()
                        .filter(|n| (n.local || n.state == "up") && n.held.contains(&gi))
                        .map(|n| n.name.clone())
                        .collect(),
                    failed_here: rt.failed.clone(),
                    last_error: rt.last_error.clone(),
                }
            })
            .collect();
        let mut counters: BTreeMap<String, u64> = self
            .counters
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        let dropped: u64 = self
            .serial_dropped
            .iter()
            .map(|d| d.load(std::sync::atomic::Ordering::Relaxed))
            .sum();
        if dropped > 0 {
            counters.insert("serial_dropped".into(), dropped);
        }
        let stats = self.sender.as_ref().map(|s| s.stats.clone());
        let ld = |f: fn(&crate::sender::SenderStats) -> u64| stats.as_ref().map_or(0, |s| f(s));
        StatusReport {
            node: cfg.local_name().into(),
            cluster: cfg.cluster_name.clone(),
            cluster_id: format!("{:#010x}", cfg.cluster_id),
            generation: self.generation,
            uptime_s: now.since(self.started).as_secs_f64(),
            status: status_name(self.core.status()),
            settled: m.is_settled(),
            auto_failback: match cfg.auto_failback {
                config::AutoFailback::On => "on",
                config::AutoFailback::Off => "off",
            }
            .into(),
            keepalive_ms: as_ms(cfg.timing.keepalive),
            warntime_ms: as_ms(cfg.timing.warntime),
            deadtime_ms: as_ms(cfg.timing.deadtime),
            initdead_ms: as_ms(cfg.timing.initdead),
            timestamps: self.ts_status.clone(),
            nodes,
            groups,
            counters,
            xdp_counters: self
                .fast
                .as_ref()
                .map(|f| {
                    f.counters()
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect()
                })
                .unwrap_or_default(),
            sender_sent: ld(|s| s.sent.load(std::sync::atomic::Ordering::Relaxed)),
            sender_errors: ld(|s| s.errors.load(std::sync::atomic::Ordering::Relaxed)),
            sender_max_late_ms: ld(|s| s.max_late_us.load(std::sync::atomic::Ordering::Relaxed))
                as f64
                / 1e3,
            sender_realtime: stats
                .as_ref()
                .is_some_and(|s| s.realtime.load(std::sync::atomic::Ordering::Relaxed)),
        }
    }

    fn teardown(&mut self) {
        self.persist_gaps();
        if let Some(s) = self.sender.take() {
            s.stop();
        }
        let _ = self.stop_children.send(true);
        let _ = std::fs::remove_file(&self.cfg.control_socket);
        // Dropping the fast path detaches XDP.
        self.ring = None;
        self.fast = None;
    }
}

fn status_name(s: Status) -> String {
    match s {
        Status::Init => "init",
        Status::Up => "up",
        Status::Shutdown => "shutdown",
    }
    .into()
}

fn poll_inputs(
    rx: &[AsyncFd<RxSocket>],
    ring: Option<&AsyncFd<RingBuf<MapData>>>,
    cx: &mut std::task::Context<'_>,
) -> Poll<()> {
    let mut ready = false;
    if let Some(r) = ring {
        if let Poll::Ready(Ok(mut g)) = r.poll_read_ready(cx) {
            g.clear_ready();
            ready = true;
        }
    }
    for s in rx {
        if let Poll::Ready(Ok(mut g)) = s.poll_read_ready(cx) {
            g.clear_ready();
            ready = true;
        }
    }
    if ready {
        Poll::Ready(())
    } else {
        Poll::Pending
    }
}

/// Heartbeat's `respawn`: run a program as `user`, restarting it when it
/// exits unless it exits with code 100; stopped (SIGTERM) at shutdown.
async fn respawn(r: config::Respawn, mut stop: watch::Receiver<bool>) {
    let user = match nix::unistd::User::from_name(&r.user) {
        Ok(Some(u)) => u,
        _ => {
            log::error!(
                "respawn (ha.cf line {}): user `{}` does not exist; not starting {}",
                r.line,
                r.user,
                r.argv[0]
            );
            return;
        }
    };
    let mut backoff = Duration::from_secs(1);
    loop {
        let started = std::time::Instant::now();
        let mut cmd = tokio::process::Command::new(&r.argv[0]);
        cmd.args(&r.argv[1..])
            .uid(user.uid.as_raw())
            .gid(user.gid.as_raw())
            .kill_on_drop(true);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                log::error!(
                    "respawn (ha.cf line {}): cannot start {}: {e}",
                    r.line,
                    r.argv[0]
                );
                return;
            }
        };
        log::info!("respawn: started {} (pid {:?})", r.argv[0], child.id());
        tokio::select! {
            st = child.wait() => {
                let code = st.ok().and_then(|s| s.code());
                if code == Some(100) {
                    log::info!("respawn: {} exited with 100: not restarting", r.argv[0]);
                    return;
                }
                if started.elapsed() > Duration::from_secs(60) {
                    backoff = Duration::from_secs(1);
                }
                log::warn!("respawn: {} exited ({code:?}); restarting in {backoff:?}", r.argv[0]);
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
            _ = stop.changed() => {
                if let Some(pid) = child.id() {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM);
                }
                let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
                return;
            }
        }
    }
}
