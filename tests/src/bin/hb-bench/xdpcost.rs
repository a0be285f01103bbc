//! Figure 4: XDP per-packet cost with BPF_PROG_TEST_RUN (the kernel times
//! `repeat` runs of the real program on one frame). The ring is drained
//! between rounds and `repeat` stays below its capacity, so every heartbeat
//! run really reserves and submits a record.

use hb_tests::{
    bench::percentile,
    frames::{datagram, frame, header, L3},
    netns::Netns,
};
use hb_userspace::xdp::{verdict, FastPath, XdpSettings};

use crate::{table, Opts, Section};

const CLUSTER: u32 = 0xbe4c_0001;
const NODE: u32 = 0x0000_0b0b;

pub fn run(o: &Opts) -> Vec<Section> {
    let ns = Netns::new("hbbx");
    let mut fp = ns.run(|| {
        FastPath::load(XdpSettings {
            port: 694,
            cluster_id: CLUSTER,
            log_level: 0,
        })
        .expect("load XDP")
    });
    fp.register_link(NODE, 1).unwrap();
    let hb = datagram(&header(CLUSTER, NODE, 1, 1), [1, 2, 3, 4]);
    let cases: Vec<(&str, Vec<u8>, u32, bool)> = vec![
        (
            "heartbeat (accepted: map update + ring record)",
            frame(L3::V4, 694, &hb, None),
            verdict::PASS,
            true,
        ),
        (
            "heartbeat over IPv6",
            frame(L3::V6, 694, &hb, None),
            verdict::PASS,
            true,
        ),
        (
            "foreign-cluster heartbeat (dropped)",
            frame(
                L3::V4,
                694,
                &datagram(&header(CLUSTER ^ 1, NODE, 1, 1), [0; 4]),
                None,
            ),
            verdict::DROP,
            false,
        ),
        (
            "other UDP traffic (passed untouched)",
            frame(L3::V4, 53, &hb, None),
            verdict::PASS,
            false,
        ),
        (
            "TCP traffic (passed untouched)",
            frame(L3::V4Tcp, 694, &hb, None),
            verdict::PASS,
            false,
        ),
    ];
    let rounds = if o.quick { 5 } else { 25 };
    let repeat = 10_000u32; // below the ring capacity (1 MiB / 56 B per record)
    let mut rows = Vec::new();
    let mut json = serde_json::Map::new();
    let mut medians = Vec::new();
    for (name, f, want, ring) in &cases {
        let mut per_pkt = Vec::new();
        for _ in 0..rounds {
            let (v, d) = fp.test_run(f, repeat).expect("BPF_PROG_TEST_RUN");
            assert_eq!(v, *want, "{name}: verdict");
            let got = fp.drain_ring().len();
            if *ring {
                assert_eq!(
                    got, repeat as usize,
                    "{name}: every run produced a ring record"
                );
            }
            per_pkt.push(d.as_nanos() as f64);
        }
        let (p50, p90, min) = (
            percentile(&per_pkt, 50.0),
            percentile(&per_pkt, 90.0),
            per_pkt.iter().cloned().fold(f64::MAX, f64::min),
        );
        medians.push(p50);
        rows.push(vec![
            name.to_string(),
            format!("{p50:.0}"),
            format!("{min:.0}"),
            format!("{p90:.0}"),
        ]);
        json.insert(name.to_string(), serde_json::json!({"median_ns": p50, "min_ns": min, "p90_ns": p90, "rounds": rounds, "repeat": repeat}));
    }
    let hb_ns = medians[0];
    let other_ns = medians[3].max(medians[4]);
    let md = format!(
        "Median of {rounds} rounds of {repeat} runs each (kernel-measured time per run).\n\n{}\nTargets: heartbeat <= 150 ns ({}), non-heartbeat <= 50 ns ({}). A heartbeat costs {:.1}x a packet the program merely inspects and passes.\n",
        table(&["frame", "median ns/pkt", "best round", "p90 round"], &rows),
        if hb_ns <= 150.0 { format!("met: {hb_ns:.0} ns") } else { format!("NOT met: {hb_ns:.0} ns") },
        if other_ns <= 50.0 { format!("met: {other_ns:.0} ns") } else { format!("NOT met: {other_ns:.0} ns") },
        hb_ns / medians[3]
    );
    vec![Section {
        title: "4. XDP per-packet cost".into(),
        markdown: md,
        json: serde_json::Value::Object(json),
    }]
}
