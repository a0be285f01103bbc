//! Figure 5: taking over (and releasing) 1000 service addresses: hb's one
//! netlink batch (the code the daemon runs) vs a loop of `ip addr add`
//! (what a script-based resource does) vs `ip -batch` (one process).

use std::{
    process::{Command, Stdio},
    time::Instant,
};

use hb_tests::{
    bench::percentile,
    netns::{veth, Netns},
};
use hb_userspace::resources::ipaddr::{self, Addr, AddrOp};

use crate::{ms, table, Opts, Section};

const N: usize = 1000;

fn addr_list(ifname: &str, ifindex: u32) -> Vec<Addr> {
    (0..N)
        .map(|i| Addr {
            ifname: ifname.into(),
            ifindex,
            addr: format!("10.210.{}.{}", 1 + i / 250, 1 + i % 250)
                .parse()
                .unwrap(),
            prefix: 16,
            label: None,
            broadcast: None,
        })
        .collect()
}

fn count(ns: &Netns, dev: &str) -> usize {
    ns.ip(&["-o", "-4", "addr", "show", "dev", dev])
        .lines()
        .filter(|l| l.contains("10.210."))
        .count()
}

fn flush(ns: &Netns, dev: &str) {
    ns.ip(&["addr", "flush", "dev", dev, "to", "10.210.0.0/16"]);
}

pub fn run(o: &Opts) -> Vec<Section> {
    let a = Netns::new("hbbv");
    let b = Netns::new("hbbw");
    let (dev, _) = veth(&a, "10.212.0.1/16", &b, "10.212.0.2/16");
    let ifindex = a.run(|| hb_userspace::netif::ifindex(&dev).unwrap());
    let addrs = addr_list(&dev, ifindex);
    let rounds = if o.quick { 2 } else { 5 };
    let (mut hb_add, mut hb_del, mut loop_add, mut batch_add) = (vec![], vec![], vec![], vec![]);
    for _ in 0..rounds {
        // hb: one batch (the daemon's code path, in the namespace).
        let (add, del) = a.run(|| {
            let t = Instant::now();
            let r = ipaddr::apply(AddrOp::Add, &addrs).expect("netlink batch");
            let add = t.elapsed();
            assert!(r.iter().all(|x| x.is_ok()));
            let n = count(&a, &dev);
            assert_eq!(n, N, "all addresses added");
            let t = Instant::now();
            ipaddr::apply(AddrOp::Del, &addrs).expect("netlink batch");
            (add, t.elapsed())
        });
        assert_eq!(count(&a, &dev), 0);
        hb_add.push(ms(add));
        hb_del.push(ms(del));

        // `ip addr add` once per address.
        let t = Instant::now();
        for x in &addrs {
            let st = Command::new("ip")
                .args([
                    "-n",
                    &a.name,
                    "addr",
                    "add",
                    &format!("{}/16", x.addr),
                    "dev",
                    &dev,
                ])
                .stdout(Stdio::null())
                .status()
                .unwrap();
            assert!(st.success());
        }
        loop_add.push(ms(t.elapsed()));
        assert_eq!(count(&a, &dev), N);
        flush(&a, &dev);

        // `ip -batch`: one process, one request per line.
        let file = std::env::temp_dir().join(format!("hb-bench-batch-{}", std::process::id()));
        std::fs::write(
            &file,
            addrs
                .iter()
                .map(|x| format!("addr add {}/16 dev {dev}\n", x.addr))
                .collect::<String>(),
        )
        .unwrap();
        let t = Instant::now();
        let st = Command::new("ip")
            .args(["-n", &a.name, "-batch"])
            .arg(&file)
            .status()
            .unwrap();
        batch_add.push(ms(t.elapsed()));
        assert!(st.success());
        assert_eq!(count(&a, &dev), N);
        flush(&a, &dev);
        let _ = std::fs::remove_file(&file);
    }
    let med = |v: &Vec<f64>| percentile(v, 50.0);
    let (h, hd, l, b) = (med(&hb_add), med(&hb_del), med(&loop_add), med(&batch_add));
    let rows = vec![
        vec![
            "hb: one netlink batch (add)".into(),
            format!("{h:.1}"),
            format!("{:.1}", h * 1000.0 / N as f64),
            "1.0x".into(),
        ],
        vec![
            "hb: one netlink batch (remove)".into(),
            format!("{hd:.1}"),
            format!("{:.1}", hd * 1000.0 / N as f64),
            "-".into(),
        ],
        vec![
            "`ip -batch` (one process)".into(),
            format!("{b:.1}"),
            format!("{:.1}", b * 1000.0 / N as f64),
            format!("{:.1}x slower", b / h),
        ],
        vec![
            "`ip addr add` loop".into(),
            format!("{l:.1}"),
            format!("{:.1}", l * 1000.0 / N as f64),
            format!("{:.1}x slower", l / h),
        ],
    ];
    let md = format!(
        "{N} IPv4 addresses on a veth, median of {rounds} rounds.\n\n{}\nTargets: <= 100 ms ({}) and >= 20x faster than the loop ({}).\n",
        table(&["method", "ms", "us/address", "vs hb"], &rows),
        if h <= 100.0 { format!("met: {h:.1} ms") } else { format!("NOT met: {h:.1} ms") },
        if l / h >= 20.0 { format!("met: {:.0}x", l / h) } else { format!("NOT met: {:.1}x", l / h) },
    );
    vec![Section {
        title: "5. Takeover of 1000 addresses".into(),
        markdown: md,
        json: serde_json::json!({"hb_add_ms": hb_add, "hb_del_ms": hb_del, "ip_loop_ms": loop_add, "ip_batch_ms": batch_add}),
    }]
}
