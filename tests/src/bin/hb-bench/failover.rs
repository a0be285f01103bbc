//! Figure 1: failover time from node loss to a client getting answers from
//! the service address on the survivor, hb vs keepalived, same topology
//! (two nodes and a client on one bridge), same detection budget (three
//! missed 10 ms intervals: hb deadtime 30 ms; VRRPv3 advert 10 ms, master
//! down = 3 adverts + skew).
//!
//! Node loss, three ways: `kill -9` of the daemon (its addresses stay, the
//! survivor must win the client over with gratuitous ARP), the node's link
//! down, and a partition between the nodes (both still reach the client).
//! The client probes the address every millisecond; the time is from the
//! fault to the first answer from the survivor.

use std::time::{Duration, Instant};

use hb_tests::{
    bench::{percentile, Keepalived, Prober, Responder},
    cluster::{Cluster, Spec},
};

use crate::{ms, plot, table, Opts, Section};

const VIP: &str = "10.200.0.50";
const STEADY: Duration = Duration::from_millis(300);
const T: Duration = Duration::from_secs(20);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Sys {
    Hb,
    Keepalived,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fault {
    Kill9,
    LinkDown,
    Partition,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::Kill9 => "kill -9 of the daemon",
            Fault::LinkDown => "node's link down",
            Fault::Partition => "partition between nodes",
        }
    }
}

struct Bed {
    c: Cluster,
    ka: Vec<Keepalived>,
    prober: Prober,
    _resp: Vec<Responder>,
    sys: Sys,
}

impl Bed {
    fn new(sys: Sys) -> Bed {
        let c = Cluster::new(Spec {
            haresources: format!("node0 {VIP}/24/eth0\n"),
            keepalive: "10ms",
            warntime: "20ms",
            deadtime: "30ms",
            initdead: "2",
            client: true,
            extra: "monitor_interval 0\narp_count 3\narp_interval 10ms\n".into(),
            ..Default::default()
        });
        let resp = (0..2)
            .map(|i| Responder::start(&c.nodes[i].ns, i as u8))
            .collect();
        let prober = Prober::start(c.client.as_ref().unwrap(), VIP);
        let ka = (0..2)
            .map(|i| {
                Keepalived::configure(&c.dir.join("ka"), i, VIP, Duration::from_millis(10), "")
            })
            .collect();
        let mut b = Bed {
            c,
            ka,
            prober,
            _resp: resp,
            sys,
        };
        for i in 0..2 {
            b.start(i);
        }
        b
    }

    fn start(&mut self, i: usize) {
        match self.sys {
            Sys::Hb => self.c.start(i),
            Sys::Keepalived => {
                let ns = &self.c.nodes[i].ns;
                self.ka[i].start(ns, i, None);
            }
        }
    }

    fn kill(&mut self, i: usize) {
        match self.sys {
            Sys::Hb => self.c.kill(i),
            Sys::Keepalived => self.ka[i].kill(),
        }
    }

    fn steady_on_node0(&mut self) -> bool {
        let t = Instant::now();
        while t.elapsed() < T {
            if self.prober.steady_on(0, STEADY) && self.c.holders_of(VIP) == vec![0] {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Applies `f`, returns the failover time, restores.
    fn trial(&mut self, f: Fault) -> Option<Duration> {
        if !self.steady_on_node0() {
            panic!(
                "{:?}: not steady on node0 before a trial (address on {:?})\n{}",
                self.sys,
                self.c.holders_of(VIP),
                self.ka
                    .iter()
                    .map(|k| k.log_text())
                    .collect::<Vec<_>>()
                    .join("\n----\n")
            );
        }
        let t0 = Instant::now();
        match f {
            Fault::Kill9 => self.kill(0),
            Fault::LinkDown => self.c.link(0, 0, false),
            Fault::Partition => self.c.partition(&[0, 1], true),
        }
        let mut took = None;
        while t0.elapsed() < Duration::from_secs(5) {
            if let Some(t) = self.prober.first_from(1, t0) {
                took = Some(t - t0);
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        match f {
            Fault::Kill9 => self.start(0),
            Fault::LinkDown => self.c.link(0, 0, true),
            Fault::Partition => self.c.partition(&[0, 1], false),
        }
        took
    }
}

pub fn run(o: &Opts) -> Vec<Section> {
    let trials = if o.quick { 3 } else { 10 };
    let faults = [Fault::Kill9, Fault::LinkDown, Fault::Partition];
    let mut results: Vec<(Sys, Fault, Vec<f64>, usize)> = Vec::new();
    for sys in [Sys::Hb, Sys::Keepalived] {
        let mut bed = Bed::new(sys);
        for f in faults {
            let mut v = Vec::new();
            let mut missed = 0;
            for _ in 0..trials {
                match bed.trial(f) {
                    Some(d) => v.push(ms(d)),
                    None => missed += 1,
                }
                std::thread::sleep(Duration::from_millis(300));
            }
            eprintln!("   {sys:?} / {}: {v:?} (missed {missed})", f.name());
            results.push((sys, f, v, missed));
        }
    }
    let mut rows = Vec::new();
    let mut json = serde_json::Map::new();
    for f in faults {
        let get = |s: Sys| results.iter().find(|r| r.0 == s && r.1 == f).unwrap();
        let (h, k) = (get(Sys::Hb), get(Sys::Keepalived));
        for r in [h, k] {
            rows.push(vec![
                f.name().into(),
                format!("{:?}", r.0).to_lowercase(),
                format!("{:.1}", percentile(&r.2, 50.0)),
                format!("{:.1}", percentile(&r.2, 90.0)),
                format!("{:.1}", r.2.iter().cloned().fold(0.0, f64::max)),
                format!("{}/{}", r.2.len(), r.2.len() + r.3),
            ]);
            json.insert(
                format!("{:?}/{:?}", r.0, f),
                serde_json::json!({"ms": r.2, "missed": r.3}),
            );
        }
        let ratio = percentile(&k.2, 50.0) / percentile(&h.2, 50.0);
        rows.push(vec![
            String::new(),
            "keepalived / hb (median)".into(),
            format!("{ratio:.2}x"),
            String::new(),
            String::new(),
            String::new(),
        ]);
    }
    let hb_all: Vec<f64> = results
        .iter()
        .filter(|r| r.0 == Sys::Hb)
        .flat_map(|r| r.2.clone())
        .collect();
    let med = percentile(&hb_all, 50.0);
    // CDF plot of every hb and keepalived trial.
    let mut cdf = String::new();
    for sys in [Sys::Hb, Sys::Keepalived] {
        let mut all: Vec<f64> = results
            .iter()
            .filter(|r| r.0 == sys)
            .flat_map(|r| r.2.clone())
            .collect();
        all.sort_by(|a, b| a.partial_cmp(b).unwrap());
        for (i, x) in all.iter().enumerate() {
            cdf += &format!("{x} {}\n", (i + 1) as f64 / all.len() as f64);
        }
        cdf += "\n\n";
    }
    std::fs::write(o.out.join("failover.dat"), &cdf).unwrap();
    let img = plot(
        &o.out,
        "failover",
        "set title 'Failover time, all faults (CDF)'\nset xlabel 'ms from fault to first answer from the survivor'\nset ylabel 'fraction of trials'\nset key bottom right\nset grid\nplot 'failover.dat' index 0 with steps lw 2 title 'hb (deadtime 30 ms)', '' index 1 with steps lw 2 title 'keepalived (advert 10 ms)'\n",
    );
    let md = format!(
        "Two nodes and a client on one bridge; {trials} trials per fault. hb: keepalive 10 ms, deadtime 30 ms. keepalived {}: VRRPv3, advert_int 0.01 (master down = 3 adverts + skew, ~36 ms for priority 100).\n\n{}\nhb median over all faults: {med:.1} ms (target <= 35 ms: {}).\n{}",
        keepalived_version(),
        table(&["fault", "system", "median ms", "p90 ms", "max ms", "trials"], &rows),
        if med <= 35.0 { "met" } else { "NOT met" },
        img.map(|p| format!("\n![failover CDF]({p})\n")).unwrap_or_default()
    );
    vec![Section {
        title: "1. Failover time".into(),
        markdown: md,
        json: serde_json::Value::Object(json),
    }]
}

pub fn keepalived_version() -> String {
    let out = std::process::Command::new("keepalived")
        .arg("--version")
        .output();
    out.map(|o| {
        let s =
            String::from_utf8_lossy(&o.stderr).to_string() + &String::from_utf8_lossy(&o.stdout);
        s.lines().next().unwrap_or("").trim().to_string()
    })
    .unwrap_or_else(|_| "(not installed)".into())
}
