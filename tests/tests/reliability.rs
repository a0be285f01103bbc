//! Hostile and lossy networks against real daemons: forged, replayed,
//! truncated, foreign-cluster and unknown-node heartbeats are never
//! accepted (and each kind is counted where it is dropped); 30% loss with
//! delay and jitter at sane timings causes no false death.

use std::{
    net::{SocketAddr, UdpSocket},
    time::{Duration, Instant},
};

use hb_common::wire::Status;
use hb_tests::{
    cluster::{Cluster, Spec},
    netfault::Impairment,
};
use hb_userspace::{
    config::AuthKey,
    proto::{self, Payload, SendInfo},
};

const T: Duration = Duration::from_secs(10);
const VIP: &str = "10.200.0.50";

fn key() -> AuthKey {
    AuthKey {
        index: 1,
        alg: hb_common::AuthAlg::Sha256,
        key: b"test-cluster-secret-0123456789".to_vec(),
    }
}

fn counter(s: &serde_json::Value, group: &str, name: &str) -> u64 {
    s[group][name].as_u64().unwrap_or(0)
}

#[test]
fn forged_replayed_truncated_and_foreign_heartbeats_are_never_accepted() {
    let mut c = Cluster::new(Spec {
        haresources: format!("node0 {VIP}/24/eth0\n"),
        client: true,
        ..Default::default()
    });
    c.start_all();
    c.wait(T, "node0 holds the address", |c| {
        c.holders_of(VIP) == vec![0]
    });
    let status1 = c.status(1).unwrap();
    let cluster_id = u32::from_str_radix(
        status1["cluster_id"]
            .as_str()
            .unwrap()
            .trim_start_matches("0x"),
        16,
    )
    .unwrap();
    let gen0 = status1["nodes"][0]["generation"].as_u64().unwrap();

    // The attacker sits on the segment and records node0's real heartbeats.
    let sniffer = c.client.as_ref().unwrap().run(|| {
        let s = UdpSocket::bind("0.0.0.0:694").unwrap();
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        s
    });
    let mut captured = Vec::new();
    let t = Instant::now();
    let mut buf = [0u8; 2048];
    while t.elapsed() < Duration::from_millis(600) {
        if let Ok((n, from)) = sniffer.recv_from(&mut buf) {
            if from.ip().to_string() == "10.200.0.1" {
                captured.push(buf[..n].to_vec());
            }
        }
    }
    assert!(
        captured.len() >= 5,
        "captured {} heartbeats of node0",
        captured.len()
    );

    // node0 dies; node1 takes over.
    c.power_off(0);
    c.wait(T, "node1 took over", |c| {
        c.holders_of(VIP) == vec![1] && c.sees(1, 0).as_deref() == Some("dead")
    });
    let before = c.status(1).unwrap();

    let tx = c
        .client
        .as_ref()
        .unwrap()
        .run(|| UdpSocket::bind("10.200.0.100:0").unwrap());
    let node1: SocketAddr = "10.200.0.2:694".parse().unwrap();
    let info = |cluster_id: u32, node: &str, generation: u64, seq: u64| SendInfo {
        cluster_id,
        node_id: hb_common::node_id(node.as_bytes()),
        generation,
        seq,
        send_time_ns: 0,
        status: Status::Up,
    };
    let payload = |node: &str| Payload {
        node_name: node.into(),
        digest: 0,
        ..Default::default()
    };
    let attacker_key = AuthKey {
        key: b"guessed-wrong-key".to_vec(),
        ..key()
    };
    let mut sent = std::collections::BTreeMap::new();
    let mut send = |what: &'static str, d: &[u8]| {
        tx.send_to(d, node1).unwrap();
        *sent.entry(what).or_insert(0u64) += 1;
    };
    for _ in 0..3 {
        // 1. Replays of node0's real, correctly signed heartbeats.
        for d in &captured {
            send("replayed", d);
        }
        // 2. Forgeries: node0 "restarted" (newer generation) but the MAC is
        //    made with a guessed key.
        for seq in 1..=5 {
            send(
                "forged",
                &proto::encode(
                    &info(cluster_id, "node0", gen0 + 1, seq),
                    &payload("node0"),
                    &attacker_key,
                )
                .unwrap(),
            );
        }
        // 3. A key index that is not in authkeys.
        let mut k9 = key();
        k9.index = 9;
        send(
            "unknown_key",
            &proto::encode(
                &info(cluster_id, "node0", gen0 + 1, 1),
                &payload("node0"),
                &k9,
            )
            .unwrap(),
        );
        // 4. Truncated copies of real heartbeats.
        for d in captured.iter().take(3) {
            send("truncated", &d[..d.len() - 5]);
        }
        // 5. A correctly signed heartbeat of another cluster id.
        send(
            "foreign",
            &proto::encode(
                &info(cluster_id ^ 0xffff, "node0", gen0 + 1, 1),
                &payload("node0"),
                &key(),
            )
            .unwrap(),
        );
        // 6. A correctly signed heartbeat of a node that is not configured.
        send(
            "unknown_node",
            &proto::encode(
                &info(cluster_id, "mallory", 1, 1),
                &payload("mallory"),
                &key(),
            )
            .unwrap(),
        );
        // 7. Garbage.
        send(
            "garbage",
            b"GET / HTTP/1.0 - certainly not a heartbeat, but long enough for a header",
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Nothing moved: node0 is still dead, node1 still holds the address.
    c.hold(
        Duration::from_millis(800),
        "node0 stays dead, address stays on node1",
        |c| c.sees(1, 0).as_deref() == Some("dead") && c.holders_of(VIP) == vec![1],
    );
    let after = c.status(1).unwrap();
    let delta = |g: &str, n: &str| counter(&after, g, n) - counter(&before, g, n);
    // Each kind counted where it was dropped: in the kernel (XDP) ...
    assert_eq!(
        delta("xdp_counters", "bad_length"),
        sent["truncated"],
        "{after}"
    );
    assert_eq!(delta("xdp_counters", "foreign_cluster"), sent["foreign"]);
    assert_eq!(delta("xdp_counters", "unknown_node"), sent["unknown_node"]);
    assert_eq!(delta("xdp_counters", "bad_magic"), sent["garbage"]);
    // ... or in the daemon, after the MAC / replay checks.
    assert_eq!(delta("counters", "bad_mac"), sent["forged"], "{after}");
    assert_eq!(delta("counters", "unknown_key"), sent["unknown_key"]);
    assert_eq!(
        delta("counters", "replayed") + delta("counters", "duplicate"),
        sent["replayed"],
        "{after}"
    );
    assert_eq!(
        delta("counters", "accepted"),
        0,
        "not a single hostile heartbeat accepted"
    );
    assert_eq!(
        after["nodes"][0]["deaths"], before["nodes"][0]["deaths"],
        "node0 never came back"
    );
}

#[test]
fn thirty_percent_loss_with_delay_and_jitter_causes_no_false_death() {
    // Sane timings for a lossy network: 50 ms keepalive, 1 s deadtime.
    let mut c = Cluster::new(Spec {
        haresources: format!("node0 {VIP}/24/eth0\n"),
        keepalive: "50ms",
        warntime: "500ms",
        deadtime: "1",
        ..Default::default()
    });
    let imp0 = Impairment::new(
        &c.nodes[0].ns,
        694,
        0.30,
        Duration::from_millis(30),
        Duration::from_millis(20),
        11,
    );
    let _imp1 = Impairment::new(
        &c.nodes[1].ns,
        694,
        0.30,
        Duration::from_millis(30),
        Duration::from_millis(20),
        12,
    );
    c.start_all();
    c.wait(T, "node0 holds the address", |c| {
        c.holders_of(VIP) == vec![0]
    });
    c.hold(
        Duration::from_secs(20),
        "no failover through 20 s of 30% loss, 30±20 ms delay",
        |c| c.holders_of(VIP) == vec![0],
    );
    let s0 = c.status(0).unwrap();
    let s1 = c.status(1).unwrap();
    for (s, peer) in [(&s0, 1), (&s1, 0)] {
        assert_eq!(s["nodes"][peer]["deaths"], 0, "no false death: {s}");
        assert_eq!(s["nodes"][peer]["state"], "up");
    }
    // The loss was real: about 70% of node0's heartbeats reached node1. A
    // packet dropped by the local firewall fails its sendto (EPERM), which
    // the sender counts as an error, so attempts = sent + errors.
    let sent = (s0["sender_sent"].as_u64().unwrap() + s0["sender_errors"].as_u64().unwrap()) as f64;
    let got = s1["nodes"][0]["heartbeats"].as_u64().unwrap() as f64;
    let ratio = got / sent;
    assert!(
        (0.55..0.85).contains(&ratio),
        "delivered {got} of {sent} ({ratio:.2})"
    );
    // And so was the delay: every surviving heartbeat of node0 was held by
    // the queue, and gaps wider than the keepalive were measured.
    let delayed = imp0.delayed.load(std::sync::atomic::Ordering::Relaxed) as f64;
    assert!(
        delayed >= got * 0.95,
        "delayed {delayed} of {got} delivered"
    );
    assert!(
        s1["nodes"][0]["max_gap_ms"].as_f64().unwrap() > 100.0,
        "{s1}"
    );
}

#[test]
fn authkeys_rotation_with_sighup_loses_no_heartbeat() {
    let mut c = Cluster::new(Spec {
        haresources: format!("node0 {VIP}/24/eth0\n"),
        ..Default::default()
    });
    c.start_all();
    c.wait(T, "cluster up", |c| {
        c.sees(1, 0).as_deref() == Some("up") && c.sees(0, 1).as_deref() == Some("up")
    });
    let write = |c: &Cluster, i: usize, content: &str| {
        let p = c.nodes[i].dir.join("authkeys");
        std::fs::write(&p, content).unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    };
    let hup = |c: &Cluster, i: usize| {
        c.nodes[i]
            .daemon
            .as_ref()
            .unwrap()
            .signal(nix::sys::signal::Signal::SIGHUP)
    };
    let old = "1 sha256 test-cluster-secret-0123456789\n";
    let new = "2 sha1 the-new-secret-for-2026-rotation\n";
    // Step 1: every node learns key 2, still sending with key 1.
    for i in 0..2 {
        write(&c, i, &format!("auth 1\n{old}{new}"));
        hup(&c, i);
    }
    c.wait(T, "reloaded", |c| {
        (0..2).all(|i| {
            c.log(i)
                .contains("authkeys reloaded: sending with key 1, accepting 2 key(s)")
        })
    });
    // Step 2: node0 switches to key 2; node1 accepts both.
    write(&c, 0, &format!("auth 2\n{old}{new}"));
    hup(&c, 0);
    c.wait(T, "node0 sends with key 2", |c| {
        c.log(0).contains("sending with key 2")
    });
    // Step 3: node1 switches too and drops key 1; then node0 drops key 1.
    write(&c, 1, &format!("auth 2\n{new}"));
    hup(&c, 1);
    c.wait(T, "node1 sends with key 2 only", |c| {
        c.log(1).contains("sending with key 2, accepting 1 key(s)")
    });
    write(&c, 0, &format!("auth 2\n{new}"));
    hup(&c, 0);
    c.wait(T, "node0 accepts key 2 only", |c| {
        c.log(0).contains("sending with key 2, accepting 1 key(s)")
    });
    c.hold(Duration::from_millis(600), "both stay up", |c| {
        c.sees(1, 0).as_deref() == Some("up") && c.sees(0, 1).as_deref() == Some("up")
    });
    for i in 0..2 {
        let s = c.status(i).unwrap();
        let peer = 1 - i;
        assert_eq!(
            s["nodes"][peer]["deaths"], 0,
            "no heartbeat lost to the rotation: {s}"
        );
        assert_eq!(
            counter(&s, "counters", "bad_mac") + counter(&s, "counters", "unknown_key"),
            0,
            "{s}"
        );
    }
    assert_eq!(c.holders_of(VIP), vec![0]);
    // A node that never learned the new key: its peer's heartbeats are refused.
    write(&c, 1, &format!("auth 1\n{old}"));
    hup(&c, 1);
    c.wait(T, "node1 refuses node0's key 2 and declares it dead", |c| {
        c.sees(1, 0).as_deref() == Some("dead")
    });
    let s = c.status(1).unwrap();
    assert!(counter(&s, "counters", "unknown_key") > 0, "{s}");
    // A reload with bad permissions keeps the current keys.
    let p = c.nodes[0].dir.join("authkeys");
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    hup(&c, 0);
    c.wait(T, "refused reload", |c| {
        c.log(0)
            .contains("authkeys not reloaded, keeping the current keys")
    });
}
