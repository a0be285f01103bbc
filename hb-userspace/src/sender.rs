//! The heartbeat sender: a dedicated thread, SCHED_FIFO at `rtprio` when
//! `realtime` is on (Heartbeat's default), with memory locked, so a loaded
//! machine keeps heartbeating even when the rest of the daemon is starved.
//!
//! It sends every `keepalive` on an absolute schedule, and immediately when
//! the engine's state changes (`notify`), on every UDP medium and serial
//! link. It records how late it woke up (jitter) for `hb status`.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Condvar, Mutex,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use hb_common::wire::Status;

use crate::{
    config::AuthKeys,
    net::{serial::SerialTx, udp},
    proto::{self, Payload, SendInfo},
    time::realtime_ns,
};

/// What the engine publishes for the next heartbeat.
#[derive(Clone, Debug)]
pub struct Outgoing {
    pub status: Status,
    pub payload: Payload,
}

struct Shared {
    out: Outgoing,
    keys: AuthKeys,
    send_now: u32,
    stop: bool,
}

/// Counters of the sender thread.
#[derive(Default)]
pub struct SenderStats {
    pub sent: AtomicU64,
    pub errors: AtomicU64,
    pub max_late_us: AtomicU64,
    pub realtime: std::sync::atomic::AtomicBool,
}

pub struct Sender {
    shared: Arc<(Mutex<Shared>, Condvar)>,
    pub stats: Arc<SenderStats>,
    thread: Option<JoinHandle<()>>,
}

/// Static parameters of the sender.
pub struct SenderConfig {
    pub cluster_id: u32,
    pub node_id: u32,
    pub generation: u64,
    pub keepalive: Duration,
    pub rtprio: Option<i32>,
}

fn set_fifo(prio: i32) -> std::io::Result<()> {
    let p = libc::sched_param {
        sched_priority: prio,
    };
    // SAFETY: sets the calling thread's policy (tid 0 = self).
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &p) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

impl Sender {
    pub fn start(
        cfg: SenderConfig,
        first: Outgoing,
        keys: AuthKeys,
        targets: Vec<udp::TxTarget>,
        serial: Vec<SerialTx>,
    ) -> std::io::Result<Sender> {
        let shared = Arc::new((
            Mutex::new(Shared {
                out: first,
                keys,
                send_now: 0,
                stop: false,
            }),
            Condvar::new(),
        ));
        let stats = Arc::new(SenderStats::default());
        let (sh, st) = (shared.clone(), stats.clone());
        let thread = std::thread::Builder::new().name("hb-sender".into()).spawn(move || {
            if let Some(p) = cfg.rtprio {
                match set_fifo(p) {
                    Ok(()) => st.realtime.store(true, Ordering::Relaxed),
                    Err(e) => log::warn!("sender: cannot use SCHED_FIFO priority {p}: {e}; heartbeats may be late under load"),
                }
            }
            let mut next = Instant::now();
            let mut seq = 0u64;
            let mut errors_logged = 0u32;
            loop {
                let (out, keys) = {
                    let (m, cv) = &*sh;
                    let mut g = m.lock().unwrap();
                    loop {
                        if g.stop {
                            return;
                        }
                        if g.send_now > 0 {
                            g.send_now -= 1;
                            break;
                        }
                        let now = Instant::now();
                        if now >= next {
                            let late = now - next;
                            st.max_late_us.fetch_max(late.as_micros() as u64, Ordering::Relaxed);
                            next += cfg.keepalive;
                            if next < now {
                                next = now + cfg.keepalive; // skip missed ticks
                            }
                            break;
                        }
                        g = cv.wait_timeout(g, next - now).unwrap().0;
                    }
                    (g.out.clone(), g.keys.clone())
                };
                seq += 1;
                let info = SendInfo {
                    cluster_id: cfg.cluster_id,
                    node_id: cfg.node_id,
                    generation: cfg.generation,
                    seq,
                    send_time_ns: realtime_ns(),
                    status: out.status,
                };
                let packet = match proto::encode(&info, &out.payload, keys.send_key()) {
                    Ok(p) => p,
                    Err(e) => {
                        log::error!("sender: cannot encode heartbeat: {e}");
                        continue;
                    }
                };
                for t in &targets {
                    match udp::send(t, &packet) {
                        Ok(()) => {
                            st.sent.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            st.errors.fetch_add(1, Ordering::Relaxed);
                            if errors_logged < 10 {
                                errors_logged += 1;
                                log::warn!("sender: {}: {e}", t.describe);
                            }
                        }
                    }
                }
                for s in &serial {
                    s.send(&packet);
                }
            }
        })?;
        Ok(Sender {
            shared,
            stats,
            thread: Some(thread),
        })
    }

    /// Publishes new content; with `now`, sends it immediately.
    pub fn update(&self, out: Outgoing, now: bool) {
        let (m, cv) = &*self.shared;
        let mut g = m.lock().unwrap();
        g.out = out;
        if now {
            g.send_now = g.send_now.max(1);
            cv.notify_one();
        }
    }

    pub fn set_keys(&self, keys: AuthKeys) {
        self.shared.0.lock().unwrap().keys = keys;
    }

    /// Sends `out` `times` times right away (shutdown notices).
    pub fn burst(&self, out: Outgoing, times: u32) {
        let (m, cv) = &*self.shared;
        let mut g = m.lock().unwrap();
        g.out = out;
        g.send_now = times;
        cv.notify_one();
    }

    /// Waits until queued immediate sends are done (bounded), then stops.
    pub fn stop(mut self) {
        let deadline = Instant::now() + Duration::from_secs(1);
        while self.shared.0.lock().unwrap().send_now > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        {
            let (m, cv) = &*self.shared;
            m.lock().unwrap().stop = true;
            cv.notify_one();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
