//! `cargo xtask bench`: the six benchmark figures of hb, each measured in
//! this run together with its baseline, written as a markdown report with
//! raw JSON and gnuplot PNGs.
//!
//! ```text
//! hb-bench [--quick] [--out DIR] [--only failover,starvation,error,xdp,vips,footprint]
//! ```
//! 1. failover time after node loss (kill -9, link down, partition): hb vs keepalived
//! 2. false failovers under CPU starvation: hb/XDP vs hb/userspace stamps vs keepalived
//! 3. arrival-time error: userspace receive time - XDP time (idle, load, starvation)
//! 4. XDP per-packet cost (BPF_PROG_TEST_RUN): heartbeat vs other frames
//! 5. 1000 service addresses: one netlink batch vs `ip addr add` loop vs `ip -batch`
//! 6. daemon footprint with 16 peers at 100 Hz

mod failover;
mod footprint;
mod starvation;
mod vips;
mod xdpcost;

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

pub struct Opts {
    pub quick: bool,
    pub out: PathBuf,
}

/// One section of the report.
pub struct Section {
    pub title: String,
    pub markdown: String,
    pub json: serde_json::Value,
}

pub use hb_userspace::time::as_ms as ms;

/// A markdown table.
pub fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut o = format!(
        "| {} |\n|{}|\n",
        head.join(" | "),
        head.iter().map(|_| "---").collect::<Vec<_>>().join("|")
    );
    for r in rows {
        let _ = writeln!(o, "| {} |", r.join(" | "));
    }
    o
}

/// Renders a gnuplot script to a PNG in `out` (skipped, with a note, if
/// gnuplot is missing).
pub fn plot(out: &Path, name: &str, script: &str) -> Option<String> {
    let png = out.join(format!("{name}.png"));
    let gp = out.join(format!("{name}.gp"));
    let full = format!(
        "set terminal png size 1000,560\nset output '{}'\n{script}",
        png.display()
    );
    std::fs::write(&gp, full).ok()?;
    // Data files are named relative to the report directory.
    let ok = Command::new("gnuplot")
        .arg(&gp)
        .current_dir(out)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    ok.then(|| format!("{name}.png"))
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    format!("{ncpu} x {cpu}, Linux {}", kernel.trim())
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut opts = Opts {
        quick: false,
        out: PathBuf::from("bench-report"),
    };
    let mut only: Option<Vec<String>> = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => opts.quick = true,
            "--out" => opts.out = PathBuf::from(args.next().expect("--out DIR")),
            "--only" => {
                only = Some(
                    args.next()
                        .expect("--only LIST")
                        .split(',')
                        .map(str::to_string)
                        .collect(),
                )
            }
            other => {
                eprintln!(
                    "unknown argument {other}; usage: hb-bench [--quick] [--out DIR] [--only LIST]"
                );
                std::process::exit(2);
            }
        }
    }
    std::fs::create_dir_all(&opts.out).expect("create output directory");
    let want = |n: &str| only.as_ref().is_none_or(|o| o.iter().any(|x| x == n));
    let started = Instant::now();
    let mut sections: Vec<Section> = Vec::new();
    type Bench = fn(&Opts) -> Vec<Section>;
    let benches: [(&str, Bench); 5] = [
        ("xdp", xdpcost::run),
        ("vips", vips::run),
        ("failover", failover::run),
        ("starvation", starvation::run),
        ("footprint", footprint::run),
    ];
    for (name, f) in benches {
        if want(name) || (name == "starvation" && want("error")) {
            eprintln!("== benchmark: {name}");
            let t = Instant::now();
            let mut s = f(&opts);
            eprintln!("   done in {:?}", t.elapsed());
            if name == "starvation" && !want("starvation") {
                s.retain(|x| x.title.contains("error"));
            }
            sections.extend(s);
        }
    }
    sections.sort_by(|a, b| a.title.cmp(&b.title));
    let mut md = String::new();
    let _ = writeln!(md, "# hb benchmark report\n");
    let _ = writeln!(
        md,
        "Machine: {}. Run: `cargo xtask bench{}` ({:.0} s). Every figure below and its baseline were measured in this run, on this machine, in network namespaces.\n",
        machine(),
        if opts.quick { " --quick" } else { "" },
        started.elapsed().as_secs_f64()
    );
    let mut json = serde_json::Map::new();
    for s in &sections {
        let _ = writeln!(md, "## {}\n\n{}\n", s.title, s.markdown);
        json.insert(s.title.clone(), s.json.clone());
    }
    std::fs::write(opts.out.join("README.md"), &md).unwrap();
    std::fs::write(
        opts.out.join("results.json"),
        serde_json::to_string_pretty(&json).unwrap(),
    )
    .unwrap();
    println!("{md}");
    eprintln!("report written to {}", opts.out.join("README.md").display());
}
