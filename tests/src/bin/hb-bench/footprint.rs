//! Figure 6: the daemon's footprint with 16 peers heartbeating at 100 Hz
//! (1600 authenticated heartbeats per second), against 1 peer at 100 Hz.
//! The peers are simulated by this process: correctly signed heartbeats
//! with the cluster's id, keys and config digest, from the client namespace.

use std::{
    net::UdpSocket,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use hb_common::wire::Status;
use hb_tests::cluster::{Cluster, Spec};
use hb_userspace::{
    config::{Config, Overrides},
    proto::{self, Payload, SendInfo},
};

use crate::{table, Opts, Section};

const PEERS: usize = 16;

fn proc_stat(pid: i32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = s.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields after the command: state is [0]; utime [11], stime [12].
    let ticks = f.get(11).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0);
    (ticks, rss)
}

struct Measure {
    cpu_pct: f64,
    rss_mb: f64,
    accepted_per_s: f64,
}

fn measure(peers: usize, secs: u64) -> Measure {
    let names: Vec<String> = (0..=PEERS).map(|i| format!("node{i}")).collect();
    let mut c = Cluster::new(Spec {
        nodes: 1,
        client: true,
        haresources: "node0 10.200.0.50/24/eth0\n".into(),
        initdead: "2",
        extra: "monitor_interval 0\n".into(),
        ..Default::default()
    });
    c.set_hacf(
        0,
        &c.hacf(0)
            .replace("node node0\n", &format!("node {}\n", names.join(" "))),
    );
    // The cluster as the simulated peers see it.
    let cfg = Config::load(
        &c.nodes[0].dir,
        &Overrides {
            node: Some("node1".into()),
            ..Default::default()
        },
    )
    .expect("config");
    c.start(0);
    let pid = c.nodes[0].daemon.as_ref().unwrap().pid();
    let sock = c
        .client
        .as_ref()
        .unwrap()
        .run(|| UdpSocket::bind("10.200.0.100:0").unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    let key = cfg.auth.send_key().clone();
    let (cid, digest) = (cfg.cluster_id, cfg.digest);
    let gen = std::thread::spawn(move || {
        let mut seq = 0u64;
        let mut next = Instant::now();
        while !st.load(Ordering::Relaxed) {
            seq += 1;
            for p in 1..=peers {
                let name = format!("node{p}");
                let info = SendInfo {
                    cluster_id: cid,
                    node_id: hb_common::node_id(name.as_bytes()),
                    generation: 1,
                    seq,
                    send_time_ns: 0,
                    status: Status::Up,
                };
                let payload = Payload {
                    node_name: name,
                    digest,
                    ..Default::default()
                };
                let d = proto::encode(&info, &payload, &key).unwrap();
                let _ = sock.send_to(&d, "10.200.0.1:694");
            }
            next += Duration::from_millis(10);
            if let Some(d) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(d);
            }
        }
    });
    c.wait(Duration::from_secs(15), "node0 sees its peers up", |c| {
        c.status(0).is_some_and(|s| {
            s["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|n| n["state"] == "up")
                .count()
                == peers + 1
        })
    });
    std::thread::sleep(Duration::from_secs(1));
    let acc0 = c.status(0).unwrap()["counters"]["accepted"]
        .as_u64()
        .unwrap_or(0);
    let (t0, _) = proc_stat(pid);
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let (t1, rss) = proc_stat(pid);
    let el = start.elapsed().as_secs_f64();
    let acc1 = c.status(0).unwrap()["counters"]["accepted"]
        .as_u64()
        .unwrap_or(0);
    stop.store(true, Ordering::Relaxed);
    let _ = gen.join();
    // SAFETY: sysconf is always safe to call.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Measure {
        cpu_pct: 100.0 * (t1 - t0) as f64 / hz / el,
        rss_mb: rss as f64 / 1024.0,
        accepted_per_s: (acc1 - acc0) as f64 / el,
    }
}

pub fn run(o: &Opts) -> Vec<Section> {
    let secs = if o.quick { 10 } else { 30 };
    let one = measure(1, secs);
    let many = measure(PEERS, secs);
    let rows = vec![
        vec![
            "1 peer at 100 Hz (baseline)".into(),
            format!("{:.0}", one.accepted_per_s),
            format!("{:.2}", one.cpu_pct),
            format!("{:.1}", one.rss_mb),
        ],
        vec![
            format!("{PEERS} peers at 100 Hz"),
            format!("{:.0}", many.accepted_per_s),
            format!("{:.2}", many.cpu_pct),
            format!("{:.1}", many.rss_mb),
        ],
    ];
    let per_hb_us = if many.accepted_per_s > one.accepted_per_s {
        (many.cpu_pct - one.cpu_pct) / 100.0 * 1e6 / (many.accepted_per_s - one.accepted_per_s)
    } else {
        f64::NAN
    };
    let md = format!(
        "One hb daemon (17-node cluster, XDP path, release build) receiving authenticated heartbeats from simulated peers for {secs} s; CPU = user+system time of the daemon over wall time (100% = one core), RSS = resident memory at the end.\n\n{}\nMarginal cost: {per_hb_us:.1} us of CPU per extra heartbeat (decode, MAC, ring match, membership); {:.1}x the baseline's CPU for {:.0}x the heartbeats.\n",
        table(&["load", "heartbeats/s accepted", "CPU % of one core", "RSS MB"], &rows),
        many.cpu_pct / one.cpu_pct.max(1e-9),
        many.accepted_per_s / one.accepted_per_s.max(1e-9)
    );
    vec![Section {
        title: "6. Daemon footprint".into(),
        markdown: md,
        json: serde_json::json!({"one": {"cpu_pct": one.cpu_pct, "rss_mb": one.rss_mb, "hb_per_s": one.accepted_per_s}, "sixteen": {"cpu_pct": many.cpu_pct, "rss_mb": many.rss_mb, "hb_per_s": many.accepted_per_s}}),
    }]
}
