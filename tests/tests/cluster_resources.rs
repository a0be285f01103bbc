//! Resource behaviour with real daemons: many addresses in one netlink
//! batch (FAQ q6), promote_secondaries (FAQ q5), Heartbeat/LSB scripts from
//! resource.d, Debian's IPaddr2 OCF agent, hung scripts, failed stops,
//! monitor failures, and the standby/takeover/cleanup commands.

use std::time::Duration;

use hb_tests::cluster::{Cluster, Spec};

const T: Duration = Duration::from_secs(10);

fn run(c: &Cluster, i: usize, args: &[&str]) -> String {
    let out = c.hb(i, args).output().unwrap();
    assert!(
        out.status.success(),
        "hb {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn group(c: &Cluster, i: usize, g: usize) -> serde_json::Value {
    c.status(i)
        .map(|s| s["groups"][g].clone())
        .unwrap_or_default()
}

#[test]
fn many_addresses_in_one_batch_and_promote_secondaries() {
    // 100 service addresses in one group (FAQ q6), plus a second group.
    let vips: Vec<String> = (0..100)
        .map(|i| format!("10.200.{}.{}", 8 + i / 200, 10 + i % 200))
        .collect();
    let hares = format!(
        "node0 {}\nnode0 10.200.0.60/24/eth0:web\n",
        vips.iter()
            .map(|v| format!("{v}/16/eth0"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut c = Cluster::new(Spec {
        haresources: hares,
        ..Default::default()
    });
    c.start_all();
    c.wait(T, "all 100 addresses on node0", |c| {
        vips.iter().all(|v| c.has_addr(0, v)) && c.has_addr(0, "10.200.0.60")
    });
    let log = c.log(0);
    assert!(
        log.contains("group 0: added 100 address(es) in one netlink batch"),
        "{log}"
    );
    assert_eq!(
        c.nodes[0]
            .ns
            .exec(&["cat", "/proc/sys/net/ipv4/conf/eth0/promote_secondaries"])
            .trim(),
        "1",
        "promote_secondaries switched on"
    );
    // FAQ q5: releasing addresses never takes the interface's other
    // addresses down. Remove the primary by hand: the secondaries survive.
    c.nodes[0]
        .ns
        .ip(&["addr", "del", "10.200.0.1/24", "dev", "eth0"]);
    assert!(
        c.has_addr(0, "10.200.0.60"),
        "secondary promoted, not flushed"
    );
    c.nodes[0]
        .ns
        .ip(&["addr", "add", "10.200.0.1/24", "dev", "eth0"]);
    // Moving group 0 away removes exactly its 100 addresses, in one batch.
    run(&c, 0, &["standby", "all"]);
    c.wait(T, "all moved to node1", |c| {
        vips.iter().all(|v| c.has_addr(1, v) && !c.has_addr(0, v)) && c.has_addr(1, "10.200.0.60")
    });
    assert!(c
        .log(0)
        .contains("group 0: removed 100 address(es) in one netlink batch"));
    assert!(c.has_addr(0, "10.200.0.1"), "node0 keeps its own address");
}

const LSB_SCRIPT: &str = r#"#!/bin/sh
# A Heartbeat/LSB-style resource script: args first, action last.
state="$HA_RSCTMP/websvc.$1"
case "$2" in
  start) echo "$1 started on $HA_CURHOST" > "$state"; echo "websvc started" ;;
  stop) rm -f "$state"; echo "websvc stopped" ;;
  status) if [ -f "$state" ]; then echo "websvc is running"; else echo "websvc is not running"; fi ;;
  *) echo "usage: websvc ARG start|stop|status"; exit 2 ;;
esac
exit 0
"#;

#[test]
fn heartbeat_scripts_from_resource_d_fail_over() {
    let mut c = Cluster::new(Spec {
        haresources: "node0 10.200.0.50/24/eth0 websvc::site1\n".into(),
        ..Default::default()
    });
    c.install_script("websvc", LSB_SCRIPT);
    c.start_all();
    let state = |c: &Cluster, i: usize| {
        std::fs::read_to_string(c.nodes[i].dir.join("rsctmp/websvc.site1")).ok()
    };
    c.wait(T, "websvc running on node0", |c| state(c, 0).is_some());
    assert_eq!(
        state(&c, 0).unwrap().trim(),
        "site1 started on node0",
        "argument and HA_CURHOST passed"
    );
    c.power_off(0);
    c.wait(T, "websvc on node1", |c| {
        state(c, 1).as_deref() == Some("site1 started on node1\n")
    });
}

#[test]
fn debian_ipaddr2_ocf_agent() {
    let mut c = Cluster::new(Spec {
        haresources: "node0 ocf:heartbeat:IPaddr2::ip=10.200.0.70::cidr_netmask=24::nic=eth0\n"
            .into(),
        client: true,
        ..Default::default()
    });
    c.start_all();
    c.wait(T, "IPaddr2 configured the address on node0", |c| {
        c.holders_of("10.200.0.70") == vec![0]
    });
    assert!(c.client_ping("10.200.0.70"));
    c.power_off(0);
    c.wait(T, "IPaddr2 moved it to node1", |c| {
        c.holders_of("10.200.0.70") == vec![1]
    });
    // IPaddr2 sends its gratuitous ARPs in the background (arp_bg).
    c.wait(T, "client reaches it on node1", |c| {
        c.client_ping("10.200.0.70")
    });
    let st = c.stop(1, T);
    assert!(st.success());
    assert!(
        c.holders_of("10.200.0.70").is_empty(),
        "IPaddr2 stop removed it"
    );
}

#[test]
fn hung_start_script_times_out_and_the_peer_takes_over() {
    let script = r#"#!/bin/sh
case "$1" in
  start) if [ "$HA_CURHOST" = node0 ]; then sleep 1000; fi; touch "$HA_RSCTMP/slow" ;;
  stop) rm -f "$HA_RSCTMP/slow" ;;
  status) [ -f "$HA_RSCTMP/slow" ] && echo running || echo "not running" ;;
esac
"#;
    let mut c = Cluster::new(Spec {
        haresources: "node0 10.200.0.50/24/eth0 slowsvc\n".into(),
        extra: "start_timeout 700ms\n".into(),
        ..Default::default()
    });
    c.install_script("slowsvc", script);
    c.start_all();
    c.wait(T, "node1 runs it after node0's start timed out", |c| {
        c.holders_of("10.200.0.50") == vec![1] && c.nodes[1].dir.join("rsctmp/slow").exists()
    });
    let g = group(&c, 0, 0);
    assert!(
        g["failed_here"]
            .as_str()
            .unwrap()
            .contains("timed out after"),
        "{g}"
    );
    assert!(
        !c.has_addr(0, "10.200.0.50"),
        "node0 rolled back the address"
    );
    // No sleeping child left behind: the whole process group was killed.
    let ps = std::process::Command::new("pgrep")
        .args(["-f", "sleep 1000"])
        .output()
        .unwrap();
    assert!(ps.stdout.is_empty(), "hung script still running");
}

#[test]
fn failed_stop_blocks_the_group_until_cleanup() {
    // The stop of `stuck` fails on node1 while a flag file exists.
    let script = r#"#!/bin/sh
case "$1" in
  start) touch "$HA_RSCTMP/stuck" ;;
  stop) [ -f "$HA_RSCTMP/nostop" ] && exit 1; rm -f "$HA_RSCTMP/stuck" ;;
  status) [ -f "$HA_RSCTMP/stuck" ] && echo running || echo "not running" ;;
esac
"#;
    let mut c = Cluster::new(Spec {
        haresources: "node0 10.200.0.50/24/eth0 stuck\n".into(),
        ..Default::default()
    });
    c.install_script("stuck", script);
    c.start(1);
    c.wait(T, "node1 runs it alone (after initdead)", |c| {
        c.has_addr(1, "10.200.0.50")
    });
    std::fs::write(c.nodes[1].dir.join("rsctmp/nostop"), "").unwrap();
    c.start(0); // preferred node returns: node1 must release, but cannot
    c.wait(T, "group blocked on node1", |c| {
        group(c, 1, 0)["phase"] == "stop-failed"
    });
    c.hold(
        Duration::from_secs(1),
        "node0 never starts a group node1 still holds",
        |c| !c.has_addr(0, "10.200.0.50") && !c.nodes[0].dir.join("rsctmp/stuck").exists(),
    );
    assert!(c.log(1).contains("retry 2 of 2"), "{}", c.log(1));
    std::fs::remove_file(c.nodes[1].dir.join("rsctmp/nostop")).unwrap();
    run(&c, 1, &["cleanup", "0"]);
    c.wait(
        T,
        "after cleanup the stop succeeds and node0 takes over",
        |c| c.holders_of("10.200.0.50") == vec![0] && c.nodes[0].dir.join("rsctmp/stuck").exists(),
    );
}

#[test]
fn monitor_failure_fails_over_and_cleanup_restores() {
    let mut c = Cluster::new(Spec {
        haresources: "node0 10.200.0.50/24/eth0 ocf:heartbeat:Dummy\n".into(),
        ..Default::default()
    });
    c.start_all();
    c.wait(T, "running on node0", |c| c.dummy_running(0, "Dummy_0_1"));
    // The service dies behind hb's back.
    std::fs::remove_file(c.nodes[0].dir.join("rsctmp/Dummy-Dummy_0_1.state")).unwrap();
    c.wait(T, "monitor noticed; node1 took over", |c| {
        c.dummy_running(1, "Dummy_0_1") && c.holders_of("10.200.0.50") == vec![1]
    });
    let g = group(&c, 0, 0);
    assert!(
        g["failed_here"]
            .as_str()
            .unwrap()
            .contains("monitor of resource 1 failed: not running"),
        "{g}"
    );
    run(&c, 0, &["cleanup"]);
    c.wait(T, "eligible again: failback (auto_failback on)", |c| {
        c.dummy_running(0, "Dummy_0_1")
            && !c.dummy_running(1, "Dummy_0_1")
            && c.holders_of("10.200.0.50") == vec![0]
    });
}

#[test]
fn standby_and_takeover_in_an_active_active_pair() {
    let mut c = Cluster::new(Spec {
        haresources: "node0 10.200.0.50/24/eth0\nnode1 10.200.0.51/24/eth0\n".into(),
        ..Default::default()
    });
    c.start_all();
    c.wait(T, "active-active", |c| {
        c.holders_of("10.200.0.50") == vec![0] && c.holders_of("10.200.0.51") == vec![1]
    });
    assert!(run(&c, 0, &["standby"]).contains("[0,1]"));
    c.wait(T, "everything on node1", |c| {
        c.holders_of("10.200.0.50") == vec![1] && c.holders_of("10.200.0.51") == vec![1]
    });
    run(&c, 0, &["takeover", "local"]);
    c.wait(T, "node0 takes back its own group", |c| {
        c.holders_of("10.200.0.50") == vec![0] && c.holders_of("10.200.0.51") == vec![1]
    });
    run(&c, 0, &["takeover", "foreign"]);
    c.wait(T, "node0 takes node1's group too", |c| {
        c.holders_of("10.200.0.51") == vec![0]
    });
    run(&c, 1, &["takeover", "local"]);
    c.wait(T, "node1 takes back its own group", |c| {
        c.holders_of("10.200.0.51") == vec![1]
    });
    let out = c.hb(0, &["standby", "sideways"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("`sideways`: say all, local or foreign"));
}

#[test]
fn respawn_restarts_a_program_and_stops_it_at_shutdown() {
    let mut c = Cluster::new(Spec::default());
    c.install_script(
        "helper",
        "#!/bin/sh\necho $$ >> \"$0.pids\"\nexec sleep 1000\n",
    );
    let helper = c.nodes[0].dir.join("resource.d/helper");
    c.set_hacf(
        0,
        &format!("{}respawn root {}\n", c.hacf(0), helper.display()),
    );
    c.start(0);
    let pids = |_: &Cluster| -> Vec<i32> {
        std::fs::read_to_string(helper.with_extension("pids"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.parse().ok())
            .collect()
    };
    c.wait(T, "helper started", |c| pids(c).len() == 1);
    let first = pids(&c)[0];
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    c.wait(T, "helper restarted after it died", |c| pids(c).len() == 2);
    let second = pids(&c)[1];
    assert!(c.log(0).contains("restarting in"), "{}", c.log(0));
    c.stop(0, T);
    c.wait(T, "helper stopped with the daemon", |_| {
        !std::path::Path::new(&format!("/proc/{second}")).exists()
    });
}
