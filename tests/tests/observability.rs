//! What an operator sees: `hb trace` (live per-heartbeat XDP arrival, gap
//! and userspace delay), `hb tune` (from the daemon, across restarts, and
//! from a recording), and the human `hb status`.

use std::time::Duration;

use hb_tests::cluster::{Cluster, Spec};
use hb_userspace::status::TraceEvent;

const T: Duration = Duration::from_secs(10);

fn out(c: &Cluster, i: usize, args: &[&str]) -> String {
    let o = c.hb(i, args).output().unwrap();
    assert!(
        o.status.success(),
        "hb {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn trace_tune_and_status_tell_the_truth() {
    let mut c = Cluster::new(Spec {
        haresources: "node0 10.200.0.50/24/eth0\n".into(),
        ..Default::default()
    });
    c.start_all();
    c.wait(T, "cluster up", |c| {
        c.sees(1, 0).as_deref() == Some("up") && c.holders_of("10.200.0.50") == vec![0]
    });

    // hb trace --json: one event per heartbeat, stamped by XDP.
    let json = out(&c, 1, &["trace", "--json", "--count", "10"]);
    let events: Vec<TraceEvent> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 10);
    for e in &events {
        assert_eq!(
            (e.node.as_str(), e.source.as_str()),
            ("node0", "xdp"),
            "{e:?}"
        );
        assert!(
            e.processed_ns >= e.arrival_ns && e.delay_ns < 50_000_000,
            "{e:?}"
        );
        assert!(e.kernel_ns.is_some(), "SO_TIMESTAMPNS recorded too");
    }
    let gaps: Vec<u64> = events.iter().filter_map(|e| e.gap_ns).collect();
    assert!(
        gaps.iter()
            .filter(|g| (40_000_000..60_000_000).contains(*g))
            .count()
            >= 7,
        "gaps ~ keepalive 50 ms: {gaps:?}"
    );
    assert!(events.windows(2).all(|w| w[1].seq > w[0].seq));

    // Table mode with the histogram summary.
    let table = out(&c, 1, &["trace", "--count", "5"]);
    assert!(
        table.contains("arrival (s)")
            && table.contains("gap between heartbeats")
            && table.contains("gap histogram"),
        "{table}"
    );

    // hb tune from the daemon.
    let tune: serde_json::Value = serde_json::from_str(&out(&c, 1, &["tune", "--json"])).unwrap();
    assert_eq!(tune["evidence"][0]["node"], "node0");
    let samples = tune["evidence"][0]["samples"].as_u64().unwrap();
    assert!(samples >= 10);
    assert!(tune["warntime_ms"].as_f64().unwrap() >= 50.0, "{tune}");
    assert!(
        tune["ha_cf"].as_str().unwrap().contains("deadtime "),
        "{tune}"
    );

    // The history survives a restart (state_dir/gaps.json).
    c.stop(1, T);
    assert!(c.nodes[1].dir.join("state/gaps.json").exists());
    c.start(1);
    c.wait(T, "node1 back", |c| c.sees(1, 0).as_deref() == Some("up"));
    let tune2: serde_json::Value = serde_json::from_str(&out(&c, 1, &["tune", "--json"])).unwrap();
    assert!(
        tune2["evidence"][0]["samples"].as_u64().unwrap() >= samples,
        "history kept: {tune2}"
    );

    // hb tune from a recording.
    let rec = c.dir.join("trace.jsonl");
    std::fs::write(&rec, &json).unwrap();
    let offline = out(&c, 1, &["tune", "--from", rec.to_str().unwrap()]);
    assert!(
        offline.contains("Recommended ha.cf settings") && offline.contains("node0"),
        "{offline}"
    );

    // The human status names the essentials.
    let st = out(&c, 1, &["status"]);
    for want in [
        "node node1 (up)",
        "arrival timestamps: xdp (eth0: driver (native))",
        "link bcast eth0",
        "held by node0",
        "SCHED_FIFO",
    ] {
        assert!(st.contains(want), "missing {want:?} in\n{st}");
    }
}
