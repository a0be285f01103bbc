//! The XDP fast path from userspace: loads the embedded `hb-ebpf` object with
//! the port and cluster id baked into its globals, attaches it to interfaces
//! (driver mode first, then generic/SKB mode), registers the configured peers
//! in the kernel's per-link map, and exposes the ring buffer, the per-peer
//! map and the per-CPU counters.
//!
//! Dropping [`FastPath`] detaches the program (the kernel also detaches it
//! when the daemon dies, since the attachment is a bpf link owned by our fd).

use std::{collections::BTreeMap, time::Duration};

use aya::{
    maps::{HashMap as BpfHashMap, MapData, MapError, PerCpuArray, RingBuf},
    programs::{ProgramError, TestRun, TestRunOptions, Xdp, XdpMode},
    Ebpf, EbpfLoader,
};
use hb_common::{
    maps::{MAP_COUNTERS, MAP_PEERS, MAP_RING, PROG_NAME},
    Counter, PeerKey, PeerState, RingRecord,
};

/// The XDP object built by `build.rs` (see `build_ebpf.rs`).
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/hb-ebpf.o"));

#[derive(Debug, thiserror::Error)]
pub enum XdpError {
    #[error("loading the XDP object failed: {0}")]
    Load(#[source] Box<aya::EbpfError>),
    #[error("the XDP object has no program `{PROG_NAME}`")]
    MissingProgram,
    #[error("the XDP object has no map `{0}`")]
    MissingMap(&'static str),
    #[error("XDP map `{name}`: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: Box<MapError>,
    },
    #[error("the kernel refused the XDP program: {0}")]
    Program(#[source] Box<ProgramError>),
    #[error("interface `{0}` does not exist")]
    NoInterface(String),
    #[error("cannot attach XDP to `{ifname}`: driver mode: {driver}; generic (SKB) mode: {skb}")]
    Attach {
        ifname: String,
        driver: Box<ProgramError>,
        skb: Box<ProgramError>,
    },
}

impl From<ProgramError> for XdpError {
    fn from(e: ProgramError) -> Self {
        XdpError::Program(Box::new(e))
    }
}

fn map_err(name: &'static str) -> impl FnOnce(MapError) -> XdpError {
    move |e| XdpError::Map {
        name,
        source: Box::new(e),
    }
}

/// How the program runs on an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AttachMode {
    /// Native XDP in the driver.
    Driver,
    /// Generic XDP in the network stack (e.g. `lo`).
    Skb,
}

impl AttachMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AttachMode::Driver => "driver (native)",
            AttachMode::Skb => "generic (SKB)",
        }
    }
}

/// An interface the program is attached to.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Attachment {
    pub ifname: String,
    pub ifindex: u32,
    pub mode: AttachMode,
}

/// Load-time settings of the program.
#[derive(Clone, Copy, Debug)]
pub struct XdpSettings {
    pub port: u16,
    pub cluster_id: u32,
    /// aya-log level mask (1 = error .. 5 = trace; 0 disables all logging).
    pub log_level: u8,
}

/// The loaded program and its maps.
pub struct FastPath {
    ebpf: Ebpf,
    peers: BpfHashMap<MapData, PeerKey, PeerState>,
    counters: PerCpuArray<MapData, u64>,
    ring: Option<RingBuf<MapData>>,
    attached: Vec<Attachment>,
}

impl FastPath {
    /// Loads and verifies the program (not attached anywhere yet).
    pub fn load(settings: XdpSettings) -> Result<Self, XdpError> {
        let mut ebpf = EbpfLoader::new()
            .override_global(hb_common::maps::GLOBAL_PORT, &settings.port, true)
            .override_global(
                hb_common::maps::GLOBAL_CLUSTER_ID,
                &settings.cluster_id,
                true,
            )
            .override_global(aya_log::LEVEL, &settings.log_level, false)
            .load(OBJECT)
            .map_err(|e| XdpError::Load(Box::new(e)))?;
        let prog: &mut Xdp = ebpf
            .program_mut(PROG_NAME)
            .ok_or(XdpError::MissingProgram)?
            .try_into()?;
        prog.load()?;
        let take = |ebpf: &mut Ebpf, name: &'static str| {
            ebpf.take_map(name).ok_or(XdpError::MissingMap(name))
        };
        let peers =
            BpfHashMap::try_from(take(&mut ebpf, MAP_PEERS)?).map_err(map_err(MAP_PEERS))?;
        let counters =
            PerCpuArray::try_from(take(&mut ebpf, MAP_COUNTERS)?).map_err(map_err(MAP_COUNTERS))?;
        let ring = RingBuf::try_from(take(&mut ebpf, MAP_RING)?).map_err(map_err(MAP_RING))?;
        Ok(FastPath {
            ebpf,
            peers,
            counters,
            ring: Some(ring),
            attached: Vec::new(),
        })
    }

    fn program(&mut self) -> Result<&mut Xdp, XdpError> {
        Ok(self
            .ebpf
            .program_mut(PROG_NAME)
            .ok_or(XdpError::MissingProgram)?
            .try_into()?)
    }

    /// Attaches to `ifname`: native driver mode first, generic SKB mode if
    /// the driver refuses. Returns the mode in use.
    pub fn attach(&mut self, ifname: &str) -> Result<AttachMode, XdpError> {
        if let Some(a) = self.attached.iter().find(|a| a.ifname == ifname) {
            return Ok(a.mode);
        }
        let ifindex = crate::netif::ifindex(ifname)
            .ok_or_else(|| XdpError::NoInterface(ifname.to_string()))?;
        let prog = self.program()?;
        let mode = match prog.attach_to_if_index(ifindex, XdpMode::Driver) {
            Ok(_) => AttachMode::Driver,
            Err(driver) => match prog.attach_to_if_index(ifindex, XdpMode::Skb) {
                Ok(_) => AttachMode::Skb,
                Err(skb) => {
                    return Err(XdpError::Attach {
                        ifname: ifname.to_string(),
                        driver: Box::new(driver),
                        skb: Box::new(skb),
                    })
                }
            },
        };
        self.attached.push(Attachment {
            ifname: ifname.to_string(),
            ifindex,
            mode,
        });
        Ok(mode)
    }

    pub fn attachments(&self) -> &[Attachment] {
        &self.attached
    }

    /// Registers `node_id` on every attached interface so the program
    /// accepts and tracks its heartbeats there.
    pub fn register_node(&mut self, node_id: u32) -> Result<(), XdpError> {
        for ifindex in self.attached.iter().map(|a| a.ifindex).collect::<Vec<_>>() {
            self.register_link(node_id, ifindex)?;
        }
        Ok(())
    }

    /// Registers one (node, interface) link. `BPF_PROG_TEST_RUN` runs see
    /// the loopback device (ifindex 1) as their ingress interface.
    pub fn register_link(&mut self, node_id: u32, ifindex: u32) -> Result<(), XdpError> {
        let key = PeerKey { node_id, ifindex };
        if self.peers.get(&key, 0).is_err() {
            self.peers
                .insert(key, PeerState::default(), 0)
                .map_err(map_err(MAP_PEERS))?;
        }
        Ok(())
    }

    /// Kernel-side state of one link.
    pub fn peer(&self, node_id: u32, ifindex: u32) -> Option<PeerState> {
        self.peers.get(&PeerKey { node_id, ifindex }, 0).ok()
    }

    /// All kernel-side link states.
    pub fn peers(&self) -> Vec<(PeerKey, PeerState)> {
        self.peers.iter().filter_map(Result::ok).collect()
    }

    /// Sum over CPUs of every counter.
    pub fn counters(&self) -> BTreeMap<&'static str, u64> {
        Counter::ALL
            .iter()
            .map(|c| (c.name(), self.counter(*c)))
            .collect()
    }

    /// One counter, summed over CPUs.
    pub fn counter(&self, c: Counter) -> u64 {
        self.counters
            .get(&(c as u32), 0)
            .map(|per_cpu| per_cpu.iter().sum())
            .unwrap_or(0)
    }

    /// Takes the ring buffer (for an async reader). Later calls return None.
    pub fn take_ring(&mut self) -> Option<RingBuf<MapData>> {
        self.ring.take()
    }

    /// Drains the ring if it has not been taken; returns the records.
    pub fn drain_ring(&mut self) -> Vec<RingRecord> {
        let mut out = Vec::new();
        if let Some(ring) = self.ring.as_mut() {
            drain(ring, |r| out.push(r));
        }
        out
    }

    /// Starts forwarding the program's aya-log messages into `log`.
    pub fn logger(&mut self) -> Option<aya_log::EbpfLogger<&'static dyn log::Log>> {
        match aya_log::EbpfLogger::init(&mut self.ebpf) {
            Ok(l) => Some(l),
            Err(e) => {
                log::warn!("XDP log forwarding unavailable: {e}");
                None
            }
        }
    }

    /// Runs the program on `frame` with `BPF_PROG_TEST_RUN`, `repeat` times;
    /// returns the XDP verdict and the kernel-measured time per run.
    pub fn test_run(&mut self, frame: &[u8], repeat: u32) -> Result<(u32, Duration), XdpError> {
        let prog = self.program()?;
        let mut opts = TestRunOptions::new();
        opts.data_in = Some(frame);
        opts.repeat = repeat.max(1);
        let r = prog.test_run(opts)?;
        Ok((r.return_value, r.duration))
    }
}

/// Reads every available record from `ring`.
pub fn drain(ring: &mut RingBuf<MapData>, mut f: impl FnMut(RingRecord)) -> usize {
    let mut n = 0;
    while let Some(item) = ring.next() {
        if item.len() >= RingRecord::SIZE {
            // SAFETY: the kernel wrote a RingRecord (same #[repr(C)] layout,
            // shared via hb-common); read_unaligned tolerates any alignment.
            let rec = unsafe { std::ptr::read_unaligned(item.as_ptr() as *const RingRecord) };
            f(rec);
            n += 1;
        }
    }
    n
}

/// XDP verdict codes (from the kernel ABI).
pub mod verdict {
    pub const ABORTED: u32 = 0;
    pub const DROP: u32 = 1;
    pub const PASS: u32 = 2;
}
