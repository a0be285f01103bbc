//! Figures 2 and 3.
//!
//! 2. False failovers during CPU starvation. Both nodes' daemons are pinned
//!    to CPU 1, where a SCHED_FIFO hog (stress-ng, priority 50) runs for the
//!    whole window; CPU 0 carries ordinary stress-ng load. The kernel's RT
//!    throttling leaves ordinary tasks 50 ms per second on CPU 1, so each
//!    daemon is frozen ~950 ms at a time. Aggressive timings: 10 ms
//!    keepalive, 100 ms deadtime (keepalived: 30 ms adverts, ~108 ms master
//!    down). hb's sender thread runs SCHED_FIFO at 60 in every variant.
//!    Nobody fails, so every death, takeover or VRRP master change is false.
//! 3. Arrival-time error: for every heartbeat hb processed, the time from
//!    its XDP stamp to the moment userspace handled it (what a userspace
//!    timestamp would have read instead), idle, under ordinary CPU load, and
//!    under the starvation above; and the SO_TIMESTAMPNS stamp vs XDP.

use std::{
    fs,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use hb_tests::{
    bench::{percentile, Keepalived},
    cluster::{Cluster, Spec},
    netns::Child,
};
use hb_userspace::{gapstats::GapStats, status::TraceEvent, trace::Summary};

use crate::{ms, plot, table, Opts, Section};

const VIP: &str = "10.200.0.50";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Variant {
    HbXdp,
    HbUserspace,
    Keepalived,
    KeepalivedRt,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::HbXdp => "hb, XDP timestamps",
            Variant::HbUserspace => "hb, userspace timestamps",
            Variant::Keepalived => "keepalived (as shipped)",
            Variant::KeepalivedRt => {
                "keepalived, vrrp_rt_priority 60 (+ vrrp_rlimit_rttime 100000)"
            }
        }
    }
    fn is_hb(self) -> bool {
        matches!(self, Variant::HbXdp | Variant::HbUserspace)
    }
}

struct Outcome {
    variant: Variant,
    deaths: u64,
    takeovers: u64,
    samples_double: u64,
    samples: u64,
    late: u64,
    trace: Vec<TraceEvent>,
}

fn spec(ts: &str) -> Spec {
    Spec {
        haresources: format!("node0 {VIP}/24/eth0\n"),
        keepalive: "10ms",
        warntime: "50ms",
        deadtime: "100ms",
        initdead: "2",
        extra: format!("monitor_interval 0\nrtprio 60\ntimestamps {ts}\n"),
        ..Default::default()
    }
}

/// `hb trace --json` of node `i`, on CPU 0, into `file`, for `secs`.
fn trace(c: &Cluster, i: usize, secs: u64, file: &Path) -> Child {
    let out = fs::File::create(file).unwrap();
    let child = c
        .hb_pinned(
            i,
            Some("0"),
            &["trace", "--json", "--seconds", &secs.to_string()],
        )
        .stdout(out)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Child { child }
}

fn read_trace(file: &Path) -> Vec<TraceEvent> {
    fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn stress(cpu: &str, extra: &[&str], secs: u64) -> Child {
    let child = Command::new("taskset")
        .args([
            "-c",
            cpu,
            "stress-ng",
            "--cpu",
            "1",
            "--quiet",
            "--timeout",
            &format!("{secs}s"),
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("stress-ng");
    Child { child }
}

fn wait_exit(mut c: Child, limit: Duration) {
    let t = Instant::now();
    while c.exited().is_none() && t.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn count(s: &str, pat: &str) -> u64 {
    s.matches(pat).count() as u64
}

fn run_variant(v: Variant, secs: u64, out: &Path) -> Outcome {
    let ts = if v == Variant::HbUserspace {
        "userspace"
    } else {
        "xdp"
    };
    let mut c = Cluster::new(spec(ts));
    let mut ka: Vec<Keepalived> = Vec::new();
    if v.is_hb() {
        for i in 0..2 {
            c.start_pinned(i, Some("1"));
        }
    } else {
        // keepalived's RT child is killed by its own RLIMIT_RTTIME guard
        // (10 ms default) at startup; 100 ms lets it run.
        let rt = if v == Variant::KeepalivedRt {
            "    vrrp_rt_priority 60\n    vrrp_rlimit_rttime 100000\n"
        } else {
            ""
        };
        for i in 0..2 {
            let mut k =
                Keepalived::configure(&c.dir.join("ka"), i, VIP, Duration::from_millis(30), rt);
            k.start(&c.nodes[i].ns, i, Some("1"));
            ka.push(k);
        }
    }
    c.wait(Duration::from_secs(15), "steady on node0", |c| {
        c.holders_of(VIP) == vec![0]
    });
    std::thread::sleep(Duration::from_secs(1));
    if c.holders_of(VIP) != vec![0] {
        let logs: Vec<String> = if v.is_hb() {
            (0..2).map(|i| c.log(i)).collect()
        } else {
            ka.iter().map(|k| k.log_text()).collect()
        };
        panic!(
            "{}: not steady before the load (address on {:?})\n{}",
            v.name(),
            c.holders_of(VIP),
            logs.join("\n-----\n")
        );
    }
    let log_before: Vec<String> = if v.is_hb() {
        (0..2).map(|i| c.log(i)).collect()
    } else {
        ka.iter().map(|k| k.log_text()).collect()
    };
    let deaths_before: u64 = if v.is_hb() { deaths(&c) } else { 0 };
    let tfile = out.join(format!("trace-{v:?}.jsonl"));
    let tr = v.is_hb().then(|| trace(&c, 1, secs, &tfile));
    let hog = stress("1", &["--sched", "fifo", "--sched-prio", "50"], secs);
    let load = stress("0", &[], secs);
    let (mut samples, mut double) = (0, 0);
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(secs) {
        let h = c.holders_of(VIP);
        samples += 1;
        if h.len() > 1 {
            double += 1;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_exit(hog, Duration::from_secs(5));
    wait_exit(load, Duration::from_secs(5));
    if let Some(t) = tr {
        wait_exit(t, Duration::from_secs(10));
    }
    std::thread::sleep(Duration::from_secs(1));
    let logs: Vec<String> = if v.is_hb() {
        (0..2).map(|i| c.log(i)).collect()
    } else {
        ka.iter().map(|k| k.log_text()).collect()
    };
    let new = |i: usize| logs[i][log_before[i].len().min(logs[i].len())..].to_string();
    let (d, takeovers, late) = if v.is_hb() {
        let s1 = c.status(1).unwrap();
        let late = s1["nodes"][0]["late_gaps"].as_u64().unwrap_or(0);
        (
            deaths(&c) - deaths_before,
            count(&new(1), "acquiring resource group"),
            late,
        )
    } else {
        // A VRRP backup that becomes master while the master lives is a
        // false failover; so is a master that is pushed back to backup.
        let to_master = count(&new(1), "Entering MASTER STATE");
        (
            to_master + count(&new(0), "Entering BACKUP STATE"),
            to_master,
            0,
        )
    };
    Outcome {
        variant: v,
        deaths: d,
        takeovers,
        samples_double: double,
        samples,
        late,
        trace: read_trace(&tfile),
    }
}

fn deaths(c: &Cluster) -> u64 {
    (0..2)
        .filter_map(|i| c.status(i))
        .map(|s| {
            s["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["deaths"].as_u64().unwrap_or(0))
                .sum::<u64>()
        })
        .sum()
}

/// Heartbeats traced on an otherwise idle / loaded (SCHED_OTHER) machine.
fn trace_only(load: bool, secs: u64, out: &Path) -> Vec<TraceEvent> {
    let mut c = Cluster::new(spec("xdp"));
    c.start_all();
    c.wait(Duration::from_secs(15), "steady", |c| {
        c.holders_of(VIP) == vec![0]
    });
    let file = out.join(format!(
        "trace-{}.jsonl",
        if load { "load" } else { "idle" }
    ));
    let tr = trace(&c, 1, secs, &file);
    let hogs: Vec<Child> = if load {
        vec![
            stress("0", &[], secs),
            stress("1", &[], secs),
            stress("0,1", &[], secs),
        ]
    } else {
        vec![]
    };
    wait_exit(tr, Duration::from_secs(secs + 10));
    for h in hogs {
        wait_exit(h, Duration::from_secs(5));
    }
    read_trace(&file)
}

fn pcts(v: &[f64]) -> Vec<String> {
    [50.0, 99.0, 99.9]
        .iter()
        .map(|p| format!("{:.3}", percentile(v, *p)))
        .chain([format!("{:.3}", v.iter().cloned().fold(0.0, f64::max))])
        .collect()
}

pub fn run(o: &Opts) -> Vec<Section> {
    let secs = if o.quick { 15 } else { 60 };
    let variants = [
        Variant::HbXdp,
        Variant::HbUserspace,
        Variant::Keepalived,
        Variant::KeepalivedRt,
    ];
    let outcomes: Vec<Outcome> = variants
        .iter()
        .map(|v| {
            let r = run_variant(*v, secs, &o.out);
            eprintln!(
                "   {}: deaths {} takeovers {} double {}/{}",
                v.name(),
                r.deaths,
                r.takeovers,
                r.samples_double,
                r.samples
            );
            r
        })
        .collect();

    // Figure 2.
    let rows: Vec<Vec<String>> = outcomes
        .iter()
        .map(|r| {
            vec![
                r.variant.name().into(),
                r.deaths.to_string(),
                r.takeovers.to_string(),
                format!(
                    "{:.1}%",
                    100.0 * r.samples_double as f64 / r.samples.max(1) as f64
                ),
                if r.variant.is_hb() {
                    r.late.to_string()
                } else {
                    "-".into()
                },
            ]
        })
        .collect();
    // Only node0 heartbeats are traced (on node1): one histogram.
    let gaps = |v: Variant| -> GapStats {
        let mut s = Summary::default();
        for e in &outcomes.iter().find(|r| r.variant == v).unwrap().trace {
            s.add(e);
        }
        s.nodes
            .into_values()
            .next()
            .map(|(g, _)| g)
            .unwrap_or_default()
    };
    let (gx, gu) = (gaps(Variant::HbXdp), gaps(Variant::HbUserspace));
    let mut dat = String::new();
    for g in [&gx, &gu] {
        for (upper, n) in g.histogram() {
            dat += &format!("{} {}\n", ms(upper), n as f64 / g.count.max(1) as f64);
        }
        dat += "\n\n";
    }
    fs::write(o.out.join("gaps.dat"), dat).unwrap();
    let img = plot(
        &o.out,
        "gaps",
        "set title 'Heartbeat gaps seen by the starved node (10 ms keepalive)'\nset logscale x\nset xlabel 'gap between consecutive heartbeats (ms, log scale)'\nset ylabel 'fraction of heartbeats'\nset grid\nset style fill transparent solid 0.5\nset logscale y\nset yrange [1e-4:1]\nplot 'gaps.dat' index 0 with boxes title 'XDP timestamps', '' index 1 with boxes title 'userspace timestamps'\n",
    );
    let xdp = &outcomes[0];
    let md2 = format!(
        "{secs} s of starvation per variant: both daemons pinned to CPU 1 with a SCHED_FIFO (prio 50) stress-ng hog on it and ordinary stress-ng load on CPU 0; RT throttling (950/1000 ms) leaves ordinary tasks 50 ms per second. hb: keepalive 10 ms, deadtime 100 ms, sender SCHED_FIFO 60. keepalived {}: VRRPv3 advert 30 ms (master down ~108 ms). Nothing actually failed, so every event counted is false.\n\n{}\nTarget 0 for hb with XDP: {}. `late` = heartbeats the starved node saw more than warntime (50 ms) after the previous one.\n\nGaps measured by the starved node: XDP max {:.1} ms, p99.9 {:.1} ms; userspace max {:.1} ms, p99.9 {:.1} ms.\n{}",
        crate::failover::keepalived_version(),
        table(&["variant", "false deaths", "false takeovers", "time with the address on both nodes", "late"], &rows),
        if xdp.deaths == 0 && xdp.takeovers == 0 { "met (0)".to_string() } else { format!("NOT met ({} deaths, {} takeovers)", xdp.deaths, xdp.takeovers) },
        ms(gx.max()),
        ms(gx.percentile(99.9)),
        ms(gu.max()),
        ms(gu.percentile(99.9)),
        img.map(|p| format!("\n![gap distributions]({p})\n")).unwrap_or_default()
    );
    let json2 = serde_json::json!(outcomes
        .iter()
        .map(|r| (r.variant.name().to_string(), serde_json::json!({"false_deaths": r.deaths, "false_takeovers": r.takeovers, "double_samples": r.samples_double, "samples": r.samples, "late": r.late})))
        .collect::<serde_json::Map<_, _>>());

    // Figure 3.
    let tsecs = if o.quick { 5 } else { 15 };
    let idle = trace_only(false, tsecs, &o.out);
    let load = trace_only(true, tsecs, &o.out);
    let mut rows3 = Vec::new();
    let mut json3 = serde_json::Map::new();
    let mut cdf = String::new();
    for (name, tr) in [
        ("idle", &idle),
        ("CPU load (stress-ng, SCHED_OTHER)", &load),
        ("starvation (figure 2)", &xdp.trace),
    ] {
        let xdp_events: Vec<&TraceEvent> = tr.iter().filter(|e| e.source == "xdp").collect();
        let delay: Vec<f64> = xdp_events.iter().map(|e| e.delay_ns as f64 / 1e6).collect();
        let kerr: Vec<f64> = xdp_events
            .iter()
            .filter_map(|e| {
                e.kernel_ns
                    .map(|k| (k as f64 - e.arrival_ns as f64).abs() / 1e6)
            })
            .collect();
        let mut r = vec![
            name.to_string(),
            format!("{}/{}", xdp_events.len(), tr.len()),
        ];
        r.extend(pcts(&delay));
        r.push(format!("{:.3}", percentile(&kerr, 99.0)));
        rows3.push(r);
        json3.insert(name.into(), serde_json::json!({"userspace_minus_xdp_ms": {"p50": percentile(&delay, 50.0), "p99": percentile(&delay, 99.0), "p999": percentile(&delay, 99.9), "max": delay.iter().cloned().fold(0.0, f64::max)}, "kernel_vs_xdp_p99_ms": percentile(&kerr, 99.0), "events": tr.len()}));
        let mut s = delay.clone();
        s.sort_by(|a, b| a.partial_cmp(b).unwrap());
        for (i, x) in s.iter().enumerate() {
            cdf += &format!("{} {}\n", x.max(1e-3), (i + 1) as f64 / s.len() as f64);
        }
        cdf += "\n\n";
    }
    fs::write(o.out.join("delay.dat"), cdf).unwrap();
    let img3 = plot(
        &o.out,
        "delay",
        "set title 'Userspace receive time minus XDP arrival time (CDF)'\nset logscale x\nset xlabel 'ms (log scale)'\nset ylabel 'fraction of heartbeats'\nset key bottom right\nset grid\nplot 'delay.dat' index 0 with steps lw 2 title 'idle', '' index 1 with steps lw 2 title 'CPU load', '' index 2 with steps lw 2 title 'starvation'\n",
    );
    let md3 = format!(
        "For every heartbeat the daemon processed: userspace receive time minus XDP arrival time, i.e. the error a userspace timestamp would have had (ms). `xdp/all` = heartbeats stamped by XDP / all traced. Last column: |SO_TIMESTAMPNS - XDP| at p99 (the kernel socket stamp, hb's fallback, is almost as exact).\n\n{}{}",
        table(&["condition", "xdp/all", "p50", "p99", "p99.9", "max", "kernel-vs-XDP p99"], &rows3),
        img3.map(|p| format!("\n![receive delay CDF]({p})\n")).unwrap_or_default()
    );
    vec![
        Section {
            title: "2. False failovers under CPU starvation".into(),
            markdown: md2,
            json: json2,
        },
        Section {
            title: "3. Arrival-time error under load".into(),
            markdown: md3,
            json: serde_json::Value::Object(json3),
        },
    ]
}
