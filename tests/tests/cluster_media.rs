//! Heartbeat media and their edges with real daemons: unicast, serial (a
//! socat pty pair) next to ethernet, IPv6 multicast with an IPv6 service
//! address, two clusters on one segment (FAQ q13), ping targets as tie
//! breaker, and the fallback to kernel timestamps when XDP is unavailable.

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use hb_tests::{
    cluster::{Cluster, Spec},
    netns::Child,
};
use hb_userspace::xdp::{FastPath, XdpSettings};

const T: Duration = Duration::from_secs(10);
const VIP: &str = "10.200.0.50";

#[test]
fn unicast_media_with_one_ha_cf_for_all_nodes() {
    let mut c = Cluster::new(Spec {
        media: "ucast",
        haresources: format!("node0 {VIP}/24/eth0\n"),
        ..Default::default()
    });
    assert!(
        c.hacf(0)
            .contains("ucast eth0 10.200.0.1\nucast eth0 10.200.0.2\n"),
        "same lines on every node"
    );
    c.start_all();
    c.wait(T, "node0 holds the address", |c| {
        c.holders_of(VIP) == vec![0]
    });
    let s = c.status(1).unwrap();
    let links = &s["nodes"][0]["links"];
    assert_eq!(links[0]["medium"], "ucast eth0 10.200.0.1");
    assert_eq!(links[0]["up"], true, "{s}");
    assert!(c
        .log(0)
        .contains("`ucast eth0 10.200.0.1` is one of our own addresses: skipped on this node"));
    c.power_off(0);
    c.wait(T, "failover over unicast", |c| c.holders_of(VIP) == vec![1]);
}

#[test]
fn serial_link_keeps_a_node_alive_when_ethernet_dies() {
    let mut c = Cluster::new(Spec {
        haresources: format!("node0 {VIP}/24/eth0\n"),
        ..Default::default()
    });
    let tty = |i: usize| c.dir.join(format!("tty{i}"));
    let (t0, t1) = (tty(0), tty(1));
    let socat = Command::new("socat")
        .args([
            format!("pty,raw,echo=0,link={}", t0.display()),
            format!("pty,raw,echo=0,link={}", t1.display()),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("socat (Debian package socat) is installed by .ci/run");
    let mut socat = Some(Child { child: socat });
    c.wait(T, "pty pair exists", |_| t0.exists() && t1.exists());
    for (i, t) in [(0, &t0), (1, &t1)] {
        let hacf = c.hacf(i).replace(
            "bcast eth0\n",
            &format!("bcast eth0\nbaud 115200\nserial {}\n", t.display()),
        );
        c.set_hacf(i, &hacf);
    }
    c.start_all();
    c.wait(T, "both media up", |c| {
        c.status(1).is_some_and(|s| {
            let l = &s["nodes"][0]["links"];
            l[0]["up"] == true
                && l[1]["up"] == true
                && l[1]["medium"].as_str().unwrap().starts_with("serial ")
        })
    });
    c.wait(T, "node0 holds the address", |c| {
        c.holders_of(VIP) == vec![0]
    });
    c.link(0, 0, false); // ethernet gone; the serial cable remains
    c.wait(T, "node1 reports the ethernet link dead", |c| {
        c.status(1)
            .is_some_and(|s| s["nodes"][0]["links"][0]["up"] == false)
    });
    c.hold(
        Duration::from_secs(1),
        "node0 stays alive through the serial link",
        |c| c.sees(1, 0).as_deref() == Some("up") && c.holders_of(VIP) == vec![0],
    );
    let beats = c.status(1).unwrap()["nodes"][0]["links"][1]["heartbeats"]
        .as_u64()
        .unwrap();
    assert!(beats > 10, "heartbeats over serial: {beats}");
    drop(socat.take()); // the cable is pulled too
    c.wait(T, "now node1 declares node0 dead", |c| {
        c.sees(1, 0).as_deref() == Some("dead")
    });
}

#[test]
fn ipv6_multicast_and_ipv6_service_address() {
    let vip6 = "fd00:200::50"; // as `ip` prints it
    let mut c = Cluster::new(Spec {
        ipv6: true,
        client: true,
        haresources: format!("node0 IPv6addr::{vip6}/64/eth0\n"),
        ..Default::default()
    });
    for i in 0..2 {
        let hacf = c
            .hacf(i)
            .replace("bcast eth0\n", "mcast6 eth0 ff12::694 694 1 0\n");
        c.set_hacf(i, &hacf);
    }
    c.start_all();
    c.wait(T, "node0 holds the IPv6 address", |c| {
        c.holders_of(vip6) == vec![0]
    });
    assert_eq!(c.status(1).unwrap()["nodes"][0]["links"][0]["up"], true);
    assert!(c.client_ping(vip6));
    c.power_off(0);
    c.wait(T, "failover over IPv6 multicast", |c| {
        c.holders_of(vip6) == vec![1]
    });
    // The unsolicited neighbour advertisement moved the client at once.
    assert!(
        c.client_ping(vip6),
        "client reaches node1 without waiting for neighbour discovery"
    );
}

#[test]
fn two_clusters_share_one_segment_and_port() {
    // FAQ q13: cluster A = node0,node1; cluster B = node2,node3; same bridge,
    // same port, broadcast. Each drops the other's heartbeats in XDP.
    let mut c = Cluster::new(Spec {
        nodes: 4,
        ..Default::default()
    });
    for i in 0..4 {
        let (members, hares) = if i < 2 {
            ("node0 node1", format!("node0 {VIP}/24/eth0\n"))
        } else {
            ("node2 node3", "node2 10.200.0.51/24/eth0\n".to_string())
        };
        c.set_hacf(
            i,
            &c.hacf(i)
                .replace("node node0 node1 node2 node3", &format!("node {members}")),
        );
        c.set_haresources(i, &hares);
    }
    c.start_all();
    c.wait(T, "each cluster placed its own address", |c| {
        c.holders_of(VIP) == vec![0] && c.holders_of("10.200.0.51") == vec![2]
    });
    for i in 0..4 {
        let s = c.status(i).unwrap();
        assert_eq!(
            s["nodes"].as_array().unwrap().len(),
            2,
            "node{i} knows only its own cluster"
        );
        assert!(
            s["xdp_counters"]["foreign_cluster"].as_u64().unwrap() > 0,
            "node{i} dropped the other cluster in XDP: {s}"
        );
        assert!(
            s["counters"].get("unknown_node").is_none(),
            "nothing foreign reached userspace"
        );
    }
    c.power_off(0);
    c.wait(T, "cluster A fails over inside A only", |c| {
        c.holders_of(VIP) == vec![1]
    });
    assert_eq!(c.holders_of("10.200.0.51"), vec![2], "cluster B unaffected");
}

#[test]
fn losing_ping_targets_moves_resources_to_the_better_connected_node() {
    let mut c = Cluster::new(Spec {
        links: 2,
        client: true,
        haresources: format!("node0 {VIP}/24/eth0\n"),
        extra: "ping 10.200.0.100\n".into(),
        ..Default::default()
    });
    c.start_all();
    c.wait(T, "node0 holds it, both see the ping target", |c| {
        c.holders_of(VIP) == vec![0]
            && c.status(1)
                .is_some_and(|s| s["nodes"][0]["ping"] == serde_json::json!([1, 1]))
    });
    // node0's uplink (eth0, where the client is) dies; eth1 keeps heartbeats.
    c.link(0, 0, false);
    c.wait(T, "ipfail: node1 takes over", |c| {
        c.holders_of(VIP) == vec![1]
    });
    assert_eq!(c.sees(1, 0).as_deref(), Some("up"), "not a node failure");
    c.link(0, 0, true);
    c.wait(T, "uplink back: failback", |c| c.holders_of(VIP) == vec![0]);
}

#[test]
fn falls_back_to_kernel_timestamps_and_says_so() {
    let mut c = Cluster::new(Spec {
        haresources: format!("node0 {VIP}/24/eth0\n"),
        ..Default::default()
    });
    // Someone else's XDP program already owns node0's eth0 (native mode).
    let _other = c.nodes[0].ns.run(|| {
        let mut f = FastPath::load(XdpSettings {
            port: 9,
            cluster_id: 1,
            log_level: 0,
        })
        .unwrap();
        f.attach("eth0").unwrap();
        f
    });
    c.start_all();
    c.wait(T, "cluster works", |c| {
        c.holders_of(VIP) == vec![0] && c.sees(1, 0).as_deref() == Some("up")
    });
    let s = c.status(0).unwrap();
    assert_eq!(s["timestamps"]["source"], "kernel");
    assert!(
        s["timestamps"]["fallback_reason"]
            .as_str()
            .unwrap()
            .contains("cannot attach XDP to `eth0`"),
        "{s}"
    );
    assert!(c
        .log(0)
        .contains("falling back to kernel socket timestamps (SO_TIMESTAMPNS)"));
    assert_eq!(
        c.status(1).unwrap()["timestamps"]["source"],
        "xdp",
        "node1 is unaffected"
    );
    // With `timestamps xdp`, the same situation is a startup error.
    c.stop(0, T);
    c.set_hacf(0, &(c.hacf(0) + "timestamps xdp\n"));
    let out = c.hb(0, &["run"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("XDP is required (`timestamps xdp`) but unavailable"),
        "{err}"
    );
}
