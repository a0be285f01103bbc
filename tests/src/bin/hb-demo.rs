//! `cargo xtask demo`: a two-node hb cluster in network namespaces, with a
//! service address, the Dummy OCF agent and a client, walked through
//! failover, failback, standby/takeover and a clean shutdown. Everything it
//! creates is removed when it ends.

use std::time::{Duration, Instant};

use hb_tests::cluster::{Cluster, Spec};

const VIP: &str = "10.200.0.50";
const DUMMY: &str = "Dummy_0_1";
const T: Duration = Duration::from_secs(15);

fn step(n: u32, msg: &str) {
    println!("\n[{n}] {msg}");
}

fn on(c: &mut Cluster, node: usize) -> Duration {
    c.wait(T, &format!("group on node{node}"), |c| {
        c.holders_of(VIP) == vec![node] && (0..2).all(|i| c.dummy_running(i, DUMMY) == (i == node))
    })
}

fn hb(c: &Cluster, i: usize, args: &[&str]) -> String {
    let out = c.hb(i, args).output().expect("run hb");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn main() {
    let spec = Spec {
        haresources: format!("node0 {VIP}/24/eth0 ocf:heartbeat:Dummy\n"),
        client: true,
        ..Default::default()
    };
    println!("hb demo: a two-node cluster in network namespaces");
    println!("  node0 10.200.0.1, node1 10.200.0.2, client 10.200.0.100, all on one bridge");
    println!(
        "  heartbeats: bcast eth0 every {}, deadtime {}, XDP timestamps",
        spec.keepalive, spec.deadtime
    );
    println!("  haresources: {}", spec.haresources.trim());
    let mut c = Cluster::new(spec);
    println!(
        "\nha.cf of node0:\n{}",
        c.hacf(0)
            .lines()
            .map(|l| format!("    {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    );

    step(1, "starting hb on both nodes");
    let t = Instant::now();
    c.start_all();
    on(&mut c, 0);
    println!(
        "    node0 (preferred) runs {VIP} + Dummy after {:?}",
        t.elapsed()
    );
    println!(
        "    client ping {VIP}: {}",
        if c.client_ping(VIP) {
            "answered"
        } else {
            "NO ANSWER"
        }
    );

    step(2, "hb status on node1");
    print!(
        "{}",
        hb(&c, 1, &["status"])
            .lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    );

    step(3, "node0 loses power (daemon killed, links down)");
    c.power_off(0);
    let took = on(&mut c, 1);
    let reach = c.wait(T, "client reaches the address", |c| c.client_ping(VIP));
    println!(
        "    node1 took over after {took:?}; the client reached {VIP} on node1 {reach:?} later"
    );

    step(4, "node0 comes back (auto_failback on: the group returns)");
    c.power_on(0);
    let t = Instant::now();
    c.start(0);
    on(&mut c, 0);
    println!(
        "    failback to node0 completed {:?} after its start, never active on both",
        t.elapsed()
    );

    step(
        5,
        "operator commands: `hb standby` then `hb takeover` on node0",
    );
    print!("    {}", hb(&c, 0, &["standby"]));
    on(&mut c, 1);
    println!("    -> everything on node1");
    print!("    {}", hb(&c, 0, &["takeover"]));
    on(&mut c, 0);
    println!("    -> everything back on node0");

    step(
        6,
        "graceful stop of node0 (SIGTERM): releases first, then tells its peer",
    );
    let t = Instant::now();
    let st = c.stop(0, T);
    on(&mut c, 1);
    println!("    node0 exited ({st}); node1 took over {:?} after the signal, without waiting for deadtime", t.elapsed());
    println!(
        "    node0 left nothing behind: address {}, agent {}",
        if c.has_addr(0, VIP) {
            "STILL SET"
        } else {
            "gone"
        },
        if c.dummy_running(0, DUMMY) {
            "STILL RUNNING"
        } else {
            "stopped"
        }
    );

    step(
        7,
        "tracing the heartbeats node1 receives (XDP arrival times, gaps, wait for userspace)",
    );
    c.power_on(0);
    c.start(0);
    on(&mut c, 0);
    print!(
        "{}",
        hb(&c, 1, &["trace", "--count", "8"])
            .lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    );

    step(
        8,
        "asking node1 what warntime/deadtime the measured gaps support (hb tune)",
    );
    print!(
        "{}",
        hb(&c, 1, &["tune"])
            .lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    );

    let st = c.stop(1, T);
    let _ = c.stop(0, T);
    println!("\ndemo finished ({st}); namespaces and files are removed now.");
}
