//! The README example cluster, for real: two (or three) hb daemons in
//! network namespaces on the XDP path, a service address and the Dummy OCF
//! agent from Debian's resource-agents, a client in a third namespace.
//! Nodes die (power off, SIGKILL), links go down, the network partitions,
//! daemons restart; the address and the agent must move exactly as
//! configured and never be active on two nodes that can hear each other.

use std::time::Duration;

use hb_tests::cluster::{Cluster, Spec};

const VIP: &str = "10.200.0.50";
const DUMMY: &str = "Dummy_0_1";
const T: Duration = Duration::from_secs(10);

fn example(mode: &'static str, links: usize) -> Cluster {
    Cluster::new(Spec {
        haresources: format!("node0 {VIP}/24/eth0 ocf:heartbeat:Dummy\n"),
        auto_failback: mode,
        links,
        client: true,
        ..Default::default()
    })
}

/// Waits for the group to run entirely on `node` and nowhere else, checking
/// along the way that the address is never on two nodes at once.
fn wait_on(c: &mut Cluster, node: usize, what: &str) -> Duration {
    c.wait(T, what, |c| {
        let h = c.holders_of(VIP);
        assert!(h.len() <= 1, "{VIP} configured on {h:?} at once ({what})");
        h == vec![node] && (0..c.nodes.len()).all(|i| c.dummy_running(i, DUMMY) == (i == node))
    })
}

/// Like [`wait_on`] but tolerating two holders on the way (after a healed
/// partition or a SIGKILL, until the loser has released).
fn converge_on(c: &mut Cluster, node: usize, what: &str) -> Duration {
    c.wait(T, what, |c| {
        c.holders_of(VIP) == vec![node]
            && (0..c.nodes.len()).all(|i| c.dummy_running(i, DUMMY) == (i == node))
    })
}

fn xdp_attached(c: &Cluster, i: usize) -> bool {
    c.nodes[i].ns.ip(&["link", "show", "eth0"]).contains("xdp")
}

#[test]
fn normal_failback_moves_back_to_preferred_node() {
    let mut c = example("on", 1);
    c.start_all();
    wait_on(&mut c, 0, "start on the preferred node");
    assert!(c.client_ping(VIP), "client reaches the service address");
    let s = c.status(1).unwrap();
    assert_eq!(s["timestamps"]["source"], "xdp", "running on the XDP path");
    assert!(s["xdp_counters"]["accepted"].as_u64().unwrap() > 0);

    c.power_off(0);
    let took = wait_on(&mut c, 1, "failover to node1");
    assert!(took < Duration::from_secs(3), "failover took {took:?}");
    assert!(c.client_ping(VIP), "client reaches the address on node1");
    assert_eq!(c.sees(1, 0).as_deref(), Some("dead"));

    c.power_on(0);
    c.start(0);
    wait_on(&mut c, 0, "failback to node0 (auto_failback on)");
    assert!(c.client_ping(VIP));
}

#[test]
fn nice_failback_keeps_the_group_where_it_runs() {
    let mut c = example("off", 1);
    c.start_all();
    wait_on(&mut c, 0, "start on the preferred node");
    c.power_off(0);
    wait_on(&mut c, 1, "failover to node1");
    c.power_on(0);
    c.start(0);
    c.wait(T, "node1 sees node0 back", |c| {
        c.sees(1, 0).as_deref() == Some("up")
    });
    c.hold(
        Duration::from_secs(2),
        "group stays on node1 (no failback)",
        |c| c.holders_of(VIP) == vec![1] && c.dummy_running(1, DUMMY) && !c.dummy_running(0, DUMMY),
    );
    // The operator can still move it explicitly.
    let out = c.hb(0, &["takeover", "all"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_on(&mut c, 0, "hb takeover moves it to node0");
}

#[test]
fn sigkill_of_a_daemon_then_restart_cleans_up_leftovers() {
    let mut c = example("on", 1);
    c.start_all();
    wait_on(&mut c, 0, "start");
    c.kill(0); // the address and the agent stay configured on node0
    c.wait(T, "node1 takes over", |c| {
        c.holders_of(VIP).contains(&1) && c.dummy_running(1, DUMMY)
    });
    assert!(c.has_addr(0, VIP), "SIGKILL cannot release anything");
    c.start(0);
    // node0 probes, finds its leftovers, removes them, then fails back.
    converge_on(&mut c, 0, "leftovers removed, failback to node0");
    let log = c.log(0);
    assert!(log.contains("was found active at startup"), "{log}");
}

#[test]
fn one_lost_medium_is_not_a_failover_both_are() {
    let mut c = example("on", 2);
    c.start_all();
    wait_on(&mut c, 0, "start");
    c.link(0, 0, false);
    c.wait(T, "node1 reports link eth0 of node0 dead", |c| {
        c.status(1).is_some_and(|s| {
            s["nodes"][0]["links"][0]["up"] == false && s["nodes"][0]["links"][1]["up"] == true
        })
    });
    c.hold(
        Duration::from_secs(1),
        "no failover while eth1 still carries heartbeats",
        |c| c.holders_of(VIP) == vec![0] && c.sees(1, 0).as_deref() == Some("up"),
    );
    // Losing the second medium too is a partition: node1 takes over...
    c.link(0, 1, false);
    c.wait(T, "node1 takes over", |c| c.holders_of(VIP).contains(&1));
    // ...and when the links come back, exactly one holder remains.
    c.link(0, 0, true);
    c.link(0, 1, true);
    converge_on(&mut c, 0, "healed: the preferred node keeps it");
}

#[test]
fn partition_heals_with_one_holder_and_fresh_arp() {
    let mut c = example("on", 1);
    c.start_all();
    wait_on(&mut c, 0, "start");
    c.partition(&[0, 1], true); // nodes cannot hear each other, the client reaches both
    c.wait(T, "split brain: both run it", |c| {
        c.holders_of(VIP) == vec![0, 1]
    });
    // The client may now point at either node.
    c.partition(&[0, 1], false);
    converge_on(&mut c, 0, "healed: node0 keeps it, node1 releases");
    // The winner re-announced the address: the client's ARP entry is node0's MAC.
    let mac0 = c.nodes[0].ns.ip(&["link", "show", "eth0"]);
    let mac0 = mac0
        .split("link/ether ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    c.wait(T, "client ARP entry points at node0", |c| {
        let _ = c.client_ping(VIP);
        c.client
            .as_ref()
            .unwrap()
            .ip(&["neigh", "show", VIP])
            .contains(&mac0)
    });
}

#[test]
fn graceful_restart_hands_over_before_deadtime_and_bumps_generation() {
    let mut c = example("on", 1);
    c.start_all();
    wait_on(&mut c, 0, "start");
    let gen1 = c.status(1).unwrap()["nodes"][0]["generation"]
        .as_u64()
        .unwrap();
    assert!(xdp_attached(&c, 0));
    let t = std::time::Instant::now();
    let st = c.stop(0, T);
    assert!(st.success(), "clean exit: {st:?}");
    // Nothing left half-configured on node0.
    assert!(!c.has_addr(0, VIP) && !c.dummy_running(0, DUMMY));
    assert!(!c.socket(0).exists(), "control socket removed");
    assert!(!xdp_attached(&c, 0), "XDP detached");
    wait_on(&mut c, 1, "node1 took over");
    let took = t.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "graceful handover took {took:?}"
    );
    assert!(
        c.log(1).contains("node node0 shut down"),
        "peer saw the shutdown notice, not a timeout"
    );
    c.start(0);
    wait_on(&mut c, 0, "failback after restart");
    let gen2 = c.status(1).unwrap()["nodes"][0]["generation"]
        .as_u64()
        .unwrap();
    assert!(gen2 > gen1, "generation bumped: {gen1} -> {gen2}");
    assert!(c.log(1).contains("node node0 restarted"), "{}", c.log(1));
}

#[test]
fn three_nodes_fail_over_in_node_order_and_back() {
    let mut c = Cluster::new(Spec {
        nodes: 3,
        haresources: format!("node0 {VIP}/24/eth0 ocf:heartbeat:Dummy\n"),
        client: true,
        ..Default::default()
    });
    c.start_all();
    wait_on(&mut c, 0, "start on node0");
    c.power_off(0);
    wait_on(&mut c, 1, "node1 is first in ha.cf order");
    c.power_off(1);
    wait_on(&mut c, 2, "then node2");
    assert!(c.client_ping(VIP));
    c.power_on(1);
    c.start(1);
    c.wait(T, "node2 sees node1", |c| {
        c.sees(2, 1).as_deref() == Some("up")
    });
    c.hold(
        Duration::from_secs(1),
        "node1 is not preferred: node2 keeps it",
        |c| c.holders_of(VIP) == vec![2],
    );
    c.power_on(0);
    c.start(0);
    wait_on(&mut c, 0, "preferred node back: failback");
}
