//! `hb trace`: live per-heartbeat latency from the daemon (peer, sequence,
//! arrival time from XDP, gap since the previous heartbeat, and how long the
//! heartbeat waited for userspace), as a table or JSON lines, with a
//! histogram summary at the end.

use std::{collections::BTreeMap, fmt::Write, path::Path, time::Duration};

use crate::{
    control::{self, ControlError, Request},
    gapstats::GapStats,
    status::TraceEvent,
    time::as_ms,
};

/// Per-node gap and delay distributions of a trace.
#[derive(Default)]
pub struct Summary {
    pub nodes: BTreeMap<String, (GapStats, GapStats)>,
    pub sources: BTreeMap<String, u64>,
}

impl Summary {
    pub fn add(&mut self, e: &TraceEvent) {
        let (gaps, delays) = self.nodes.entry(e.node.clone()).or_default();
        if let Some(g) = e.gap_ns {
            gaps.record(Duration::from_nanos(g));
        }
        delays.record(Duration::from_nanos(e.delay_ns));
        *self.sources.entry(e.source.clone()).or_default() += 1;
    }

    pub fn render(&self) -> String {
        let mut o = String::new();
        let p = |s: &GapStats, q: f64| format!("{:.3}", as_ms(s.percentile(q)));
        let _ = writeln!(
            o,
            "\n{:<16} {:<22} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "node", "measure (ms)", "count", "p50", "p99", "p99.9", "max", "mean"
        );
        for (n, (g, d)) in &self.nodes {
            for (what, s) in [("gap between heartbeats", g), ("wait for userspace", d)] {
                let _ = writeln!(
                    o,
                    "{:<16} {:<22} {:>8} {:>9} {:>9} {:>9} {:>9.3} {:>9.3}",
                    n,
                    what,
                    s.count,
                    p(s, 50.0),
                    p(s, 99.0),
                    p(s, 99.9),
                    as_ms(s.max()),
                    as_ms(s.mean())
                );
            }
            let _ = writeln!(o, "  gap histogram:");
            let total = g.count.max(1);
            for (upper, c) in g.histogram() {
                let bar = "#".repeat(((c * 50) / total).max(1) as usize);
                let _ = writeln!(o, "    <= {:>9.3} ms {:>8} {bar}", as_ms(upper), c);
            }
        }
        let src: Vec<String> = self
            .sources
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        let _ = writeln!(o, "arrival timestamps from {}", src.join(", "));
        o
    }
}

/// One table row.
pub fn row(e: &TraceEvent) -> String {
    format!(
        "{:<16} {:>4} {:>10} {:>16.6} {:>10} {:>10.1} {}",
        e.node,
        e.link,
        e.seq,
        e.arrival_ns as f64 / 1e9,
        e.gap_ns
            .map_or("-".into(), |g| format!("{:.3}", g as f64 / 1e6)),
        e.delay_ns as f64 / 1e3,
        e.source
    )
}

/// Streams trace events from the daemon until `count` events, `duration`,
/// or Ctrl-C; then prints the summary (table mode).
pub async fn run_client(
    socket: &Path,
    json: bool,
    count: Option<u64>,
    duration: Option<Duration>,
) -> Result<(), ControlError> {
    let (mut lines, _w) = control::open(socket, &Request::Trace).await?;
    let first = lines.next_line().await.ok().flatten().unwrap_or_default();
    if !first.contains("\"ok\":true") {
        return Err(ControlError::BadReply(first));
    }
    if !json {
        println!(
            "{:<16} {:>4} {:>10} {:>16} {:>10} {:>10} source",
            "node", "link", "seq", "arrival (s)", "gap (ms)", "wait (us)"
        );
    }
    let mut summary = Summary::default();
    let mut n = 0u64;
    let deadline = duration.map(|d| tokio::time::Instant::now() + d);
    loop {
        let next = async {
            match deadline {
                Some(d) => tokio::time::timeout_at(d, lines.next_line()).await.ok(),
                None => Some(lines.next_line().await),
            }
        };
        let line = tokio::select! {
            l = next => l,
            _ = tokio::signal::ctrl_c() => None,
        };
        let Some(Ok(Some(line))) = line else { break };
        let Ok(e) = serde_json::from_str::<TraceEvent>(&line) else {
            continue;
        };
        if json {
            println!("{line}");
        } else {
            println!("{}", row(&e));
        }
        summary.add(&e);
        n += 1;
        if count.is_some_and(|c| n >= c) {
            break;
        }
    }
    if !json {
        print!("{}", summary.render());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_and_rows() {
        let mut s = Summary::default();
        for i in 1..=100u64 {
            s.add(&TraceEvent {
                node: "beta".into(),
                seq: i,
                gap_ns: (i > 1).then_some(10_000_000 + i * 1000),
                delay_ns: 200_000,
                source: "xdp".into(),
                ..Default::default()
            });
        }
        let (g, d) = &s.nodes["beta"];
        assert_eq!(g.count, 99);
        assert_eq!(d.count, 100);
        let out = s.render();
        assert!(out.contains("gap between heartbeats"), "{out}");
        assert!(out.contains("arrival timestamps from xdp: 100"), "{out}");
        let r = row(&TraceEvent {
            node: "beta".into(),
            seq: 7,
            gap_ns: Some(1_500_000),
            delay_ns: 250_000,
            source: "xdp".into(),
            ..Default::default()
        });
        assert!(
            r.contains("1.500") && r.contains("250.0") && r.ends_with("xdp"),
            "{r}"
        );
    }
}
