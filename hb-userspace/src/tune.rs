//! `hb tune`: measured instead of guessed timeouts (Heartbeat FAQ q10).
//!
//! The FAQ's rule: find the longest time a node went without hearing a
//! heartbeat, set warntime to that and deadtime to 1.5-2 times that. hb has
//! the data already (every gap, kernel-timestamped, in a histogram), so
//! `hb tune` applies the rule - with the 2x end of the range - and prints the
//! evidence: sample size, time covered, percentiles, and how the current
//! settings compare.

use std::{
    collections::BTreeMap,
    fmt::Write,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Serialize;

use crate::{
    control::{self, ControlError, Request},
    gapstats::GapStats,
    status::TraceEvent,
    time::as_ms,
};

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NodeEvidence {
    pub node: String,
    pub samples: u64,
    pub covered_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Recommendation {
    pub warntime_ms: f64,
    pub deadtime_ms: f64,
    pub initdead_ms: f64,
    pub evidence: Vec<NodeEvidence>,
    pub notes: Vec<String>,
    pub ha_cf: String,
}

/// Rounds up to two significant digits (e.g. 0.1234 s -> 0.13 s).
pub fn round_up(d: Duration) -> Duration {
    let ns = d.as_nanos() as f64;
    if ns <= 0.0 {
        return Duration::ZERO;
    }
    let mag = 10f64.powi(ns.log10().floor() as i32 - 1);
    Duration::from_nanos(((ns / mag).ceil() * mag) as u64)
}

/// ha.cf syntax for a duration: `ms` below 10 s.
pub fn hacf_time(d: Duration) -> String {
    if d >= Duration::from_secs(10) && d.subsec_millis() == 0 {
        format!("{}", d.as_secs())
    } else {
        format!("{}ms", d.as_millis().max(1))
    }
}

/// Applies the FAQ rule to per-node gap statistics.
pub fn recommend(
    gaps: &BTreeMap<String, GapStats>,
    keepalive: Duration,
    current: Option<(Duration, Duration)>,
    source: &str,
) -> Recommendation {
    let mut evidence = Vec::new();
    let mut worst = Duration::ZERO;
    let mut total = 0u64;
    for (n, g) in gaps {
        if g.count == 0 {
            continue;
        }
        worst = worst.max(g.max());
        total += g.count;
        evidence.push(NodeEvidence {
            node: n.clone(),
            samples: g.count,
            covered_s: (g.sum_ns as f64) / 1e9,
            p50_ms: as_ms(g.percentile(50.0)),
            p99_ms: as_ms(g.percentile(99.0)),
            p999_ms: as_ms(g.percentile(99.9)),
            max_ms: as_ms(g.max()),
        });
    }
    let warntime = round_up(worst.max(keepalive * 2));
    let deadtime = round_up((worst * 2).max(keepalive * 3).max(warntime * 3 / 2));
    let initdead = round_up((deadtime * 2).max(Duration::from_secs(10)));
    let mut notes = Vec::new();
    if total == 0 {
        notes.push("no heartbeat gaps recorded yet: let the cluster run (under its real load) and ask again".into());
    } else if total < 100_000 {
        let covered = evidence.iter().map(|e| e.covered_s).fold(0.0, f64::max);
        notes.push(format!(
            "based on {total} heartbeats ({covered:.0} s); the worst gap only shows up under real peak load: keep recording (weeks, per the FAQ) and re-run `hb tune`"
        ));
    }
    if source == "userspace" {
        notes.push("gaps were measured when the daemon read the heartbeats, so they include its own scheduling delays; with XDP or kernel timestamps they measure the network and the sender only".into());
    }
    if let Some((w, d)) = current {
        if d < deadtime {
            notes.push(format!(
                "current deadtime {} is BELOW the recommended {}: the worst observed gap ({:.1} ms) would already be {:.0}% of it - risk of false failovers",
                hacf_time(d),
                hacf_time(deadtime),
                as_ms(worst),
                100.0 * worst.as_secs_f64() / d.as_secs_f64()
            ));
        } else if d > deadtime * 2 {
            notes.push(format!(
                "current deadtime {} is {:.1}x the recommendation: failover could start {:.0} ms sooner",
                hacf_time(d),
                d.as_secs_f64() / deadtime.as_secs_f64(),
                as_ms(d - deadtime)
            ));
        }
        if w < worst {
            notes.push(format!(
                "current warntime {} is below the worst gap: expect 'late heartbeat' warnings",
                hacf_time(w)
            ));
        }
    }
    let ha_cf = format!(
        "keepalive {}\nwarntime {}\ndeadtime {}\ninitdead {}\n",
        hacf_time(keepalive),
        hacf_time(warntime),
        hacf_time(deadtime),
        hacf_time(initdead)
    );
    Recommendation {
        warntime_ms: as_ms(warntime),
        deadtime_ms: as_ms(deadtime),
        initdead_ms: as_ms(initdead),
        evidence,
        notes,
        ha_cf,
    }
}

impl Recommendation {
    pub fn render(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "{:<16} {:>10} {:>10} {:>9} {:>9} {:>9} {:>9}",
            "node", "heartbeats", "covered", "p50 ms", "p99 ms", "p99.9 ms", "max ms"
        );
        for e in &self.evidence {
            let _ = writeln!(
                o,
                "{:<16} {:>10} {:>9.0}s {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
                e.node, e.samples, e.covered_s, e.p50_ms, e.p99_ms, e.p999_ms, e.max_ms
            );
        }
        let _ = writeln!(
            o,
            "\nRule (Heartbeat FAQ q10): warntime = longest gap seen, deadtime = 2 x that."
        );
        let _ = writeln!(o, "Recommended ha.cf settings:\n{}", self.ha_cf);
        for n in &self.notes {
            let _ = writeln!(o, "note: {n}");
        }
        o
    }
}

/// Builds per-node gap statistics from `hb trace --json` recordings.
pub fn gaps_from_traces(
    files: &[PathBuf],
) -> std::io::Result<(BTreeMap<String, GapStats>, String)> {
    let mut summary = crate::trace::Summary::default();
    for f in files {
        for line in std::fs::read_to_string(f)?.lines() {
            if let Ok(e) = serde_json::from_str::<TraceEvent>(line) {
                summary.add(&e);
            }
        }
    }
    // Any read-time stamps taint the evidence: say so.
    let source = if summary.sources.contains_key("userspace") {
        "userspace".to_string()
    } else {
        summary.sources.keys().next().cloned().unwrap_or_default()
    };
    let gaps = summary
        .nodes
        .into_iter()
        .map(|(n, (g, _))| (n, g))
        .collect();
    Ok((gaps, source))
}

/// `hb tune`: from the daemon, or from recordings.
pub async fn run_client(socket: &Path, from: &[PathBuf], json: bool) -> Result<(), ControlError> {
    let io = |e: std::io::Error| ControlError::Io {
        path: from.first().cloned().unwrap_or_default(),
        err: e,
    };
    let rec = if from.is_empty() {
        let v = control::request(socket, &Request::Gaps).await?;
        let gaps: BTreeMap<String, GapStats> = serde_json::from_value(v["gaps"].clone())
            .map_err(|e| ControlError::BadReply(e.to_string()))?;
        let f = |k: &str| Duration::from_secs_f64(v[k].as_f64().unwrap_or(0.0) / 1e3);
        recommend(
            &gaps,
            f("keepalive_ms"),
            Some((f("warntime_ms"), f("deadtime_ms"))),
            v["source"].as_str().unwrap_or(""),
        )
    } else {
        let (gaps, source) = gaps_from_traces(from).map_err(io)?;
        // Without the config, the median gap is the keepalive.
        let keepalive = gaps
            .values()
            .map(|g| g.percentile(50.0))
            .max()
            .unwrap_or(Duration::from_secs(1));
        recommend(&gaps, keepalive, None, &source)
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rec).expect("serializes")
        );
    } else {
        print!("{}", rec.render());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn rounding_and_syntax() {
        assert_eq!(
            round_up(Duration::from_micros(12_340)),
            Duration::from_micros(13_000)
        );
        assert_eq!(
            round_up(Duration::from_millis(100)),
            Duration::from_millis(100)
        );
        assert_eq!(
            round_up(Duration::from_millis(1234)),
            Duration::from_millis(1300)
        );
        assert_eq!(hacf_time(Duration::from_millis(130)), "130ms");
        assert_eq!(hacf_time(Duration::from_secs(30)), "30");
    }

    #[test]
    fn faq_rule_with_evidence() {
        let mut g = GapStats::default();
        for i in 0..200_000u64 {
            g.record(if i % 50_000 == 0 {
                37 * MS
            } else {
                10 * MS + Duration::from_micros(i % 300)
            });
        }
        let gaps: BTreeMap<String, GapStats> = [("beta".to_string(), g)].into_iter().collect();
        let r = recommend(&gaps, 10 * MS, Some((500 * MS, 30_000 * MS)), "xdp");
        assert_eq!(r.warntime_ms, 37.0, "warntime = longest gap");
        assert_eq!(r.deadtime_ms, 74.0, "deadtime = 2 x longest gap");
        assert_eq!(r.initdead_ms, 10_000.0);
        assert!(r.ha_cf.contains("deadtime 74ms"), "{}", r.ha_cf);
        assert_eq!(r.evidence[0].samples, 200_000);
        assert!(
            r.notes
                .iter()
                .any(|n| n.contains("405.4x the recommendation")),
            "{:?}",
            r.notes
        );
        let risky = recommend(&gaps, 10 * MS, Some((20 * MS, 50 * MS)), "userspace");
        assert!(
            risky
                .notes
                .iter()
                .any(|n| n.contains("BELOW the recommended 74ms")),
            "{:?}",
            risky.notes
        );
        assert!(risky
            .notes
            .iter()
            .any(|n| n.contains("include its own scheduling delays")));
        assert!(risky
            .notes
            .iter()
            .any(|n| n.contains("expect 'late heartbeat' warnings")));
    }

    #[test]
    fn empty_and_small_samples_say_so() {
        let r = recommend(&BTreeMap::new(), Duration::from_secs(1), None, "xdp");
        assert!(r.notes[0].contains("no heartbeat gaps recorded yet"));
        assert_eq!(r.deadtime_ms, 3000.0, "never below 3 x keepalive");
    }

    #[test]
    fn traces_are_read_back() {
        let p = std::env::temp_dir().join(format!("hb-tune-{}.jsonl", std::process::id()));
        let lines: Vec<String> = (1..=10u64)
            .map(|i| {
                serde_json::to_string(&TraceEvent {
                    node: "b".into(),
                    seq: i,
                    gap_ns: Some(i * 1_000_000),
                    source: "xdp".into(),
                    ..Default::default()
                })
                .unwrap()
            })
            .collect();
        std::fs::write(&p, lines.join("\n") + "\nnot json\n").unwrap();
        let (g, src) = gaps_from_traces(std::slice::from_ref(&p)).unwrap();
        assert_eq!(
            (g["b"].count, g["b"].max(), src.as_str()),
            (10, 10 * MS, "xdp")
        );
        std::fs::remove_file(&p).unwrap();
    }
}
