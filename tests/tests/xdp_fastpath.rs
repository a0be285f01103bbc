//! The real XDP program, loaded into the kernel: `BPF_PROG_TEST_RUN` on
//! crafted frames, and real heartbeats over veth (driver mode) and loopback
//! (SKB mode) inside private network namespaces.

use std::{
    net::{SocketAddr, UdpSocket},
    time::{Duration, Instant},
};

use hb_common::{wire::HEADER_LEN, Counter, RingRecord};
use hb_tests::{
    frames::{datagram, frame, header, L3},
    netns::{require_root, veth, Netns},
};
use hb_userspace::xdp::{verdict, AttachMode, FastPath, XdpSettings};

const CLUSTER: u32 = 0xc1c1_0001;
const NODE: u32 = 0x0000_0b0b;
const PORT: u16 = 694;

fn load() -> FastPath {
    require_root();
    FastPath::load(XdpSettings {
        port: PORT,
        cluster_id: CLUSTER,
        log_level: 0,
    })
    .expect("load XDP program")
}

#[test]
fn prog_test_run_on_crafted_frames() {
    let mut fp = load();
    // BPF_PROG_TEST_RUN's ingress device is loopback (ifindex 1).
    fp.register_link(NODE, 1).unwrap();

    let ok = datagram(&header(CLUSTER, NODE, 7, 1), *b"\x11\x22\x33\x44");
    let foreign = datagram(&header(0xdead_beef, NODE, 7, 1), [0; 4]);
    let unknown = datagram(&header(CLUSTER, 0x5151, 7, 1), [0; 4]);
    let mut bad_magic = ok.clone();
    bad_magic[0] = b'X';
    let mut bad_version = ok.clone();
    bad_version[4] = 9;
    let mut too_long = ok.clone();
    too_long.push(0);
    let truncated = ok[..HEADER_LEN - 8].to_vec();

    type Case<'a> = (&'a str, Vec<u8>, u32, Option<Counter>);
    let cases: Vec<Case> = vec![
        (
            "valid v4",
            frame(L3::V4, PORT, &ok, None),
            verdict::PASS,
            Some(Counter::Accepted),
        ),
        (
            "valid v6",
            frame(L3::V6, PORT, &ok, None),
            verdict::PASS,
            Some(Counter::Accepted),
        ),
        (
            "valid vlan",
            frame(L3::V4Vlan, PORT, &ok, None),
            verdict::PASS,
            Some(Counter::Accepted),
        ),
        (
            "foreign cluster",
            frame(L3::V4, PORT, &foreign, None),
            verdict::DROP,
            Some(Counter::Foreign),
        ),
        (
            "unknown node",
            frame(L3::V4, PORT, &unknown, None),
            verdict::DROP,
            Some(Counter::UnknownNode),
        ),
        (
            "bad magic",
            frame(L3::V4, PORT, &bad_magic, None),
            verdict::DROP,
            Some(Counter::BadMagic),
        ),
        (
            "bad version",
            frame(L3::V4, PORT, &bad_version, None),
            verdict::DROP,
            Some(Counter::BadVersion),
        ),
        (
            "length mismatch",
            frame(L3::V4, PORT, &too_long, None),
            verdict::DROP,
            Some(Counter::BadLength),
        ),
        (
            "truncated header",
            frame(L3::V4, PORT, &truncated, None),
            verdict::DROP,
            Some(Counter::Truncated),
        ),
        (
            "udp len beyond frame",
            frame(L3::V4, PORT, &ok, Some(2000)),
            verdict::DROP,
            Some(Counter::BadUdp),
        ),
        (
            "udp len below header",
            frame(L3::V4, PORT, &ok, Some(4)),
            verdict::DROP,
            Some(Counter::BadUdp),
        ),
        (
            "other port",
            frame(L3::V4, 695, &ok, None),
            verdict::PASS,
            None,
        ),
        (
            "tcp to 694",
            frame(L3::V4Tcp, PORT, &ok, None),
            verdict::PASS,
            None,
        ),
        (
            "ipv4 fragment",
            frame(L3::V4Fragment, PORT, &ok, None),
            verdict::PASS,
            None,
        ),
        ("arp frame", arp_frame(), verdict::PASS, None),
    ];

    for (name, f, want_verdict, want_counter) in cases {
        let before = fp.counters();
        let (v, _) = fp.test_run(&f, 1).unwrap();
        assert_eq!(v, want_verdict, "{name}: verdict");
        let after = fp.counters();
        for c in Counter::ALL {
            let delta = after[c.name()] - before[c.name()];
            let want = u64::from(Some(c) == want_counter);
            assert_eq!(
                delta,
                want,
                "{name}: counter {} changed by {delta}",
                c.name()
            );
        }
        let records = fp.drain_ring();
        if want_counter == Some(Counter::Accepted) {
            assert_eq!(records.len(), 1, "{name}: one ring record");
            let r = records[0];
            assert_eq!(
                (r.node_id, r.generation, r.seq, r.ifindex),
                (NODE, 7, 1, 1),
                "{name}"
            );
            assert_eq!(r.mac_tag, *b"\x11\x22\x33\x44", "{name}: MAC tag");
            assert_eq!(r.datagram_len as usize, ok.len(), "{name}");
            assert!(r.ktime_ns > 0);
        } else {
            assert!(
                records.is_empty(),
                "{name}: no ring record, got {records:?}"
            );
        }
    }
    let peer = fp.peer(NODE, 1).expect("peer entry");
    assert_eq!(peer.count, 3, "three accepted frames");
    assert!(
        fp.peer(0x5151, 1).is_none(),
        "unknown nodes never create entries"
    );
}

/// A broadcast ARP request (ethertype 0x0806): not IP, must pass untouched.
fn arp_frame() -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 2, 0x08, 0x06]);
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&[
        0x02, 0, 0, 0, 0, 2, 10, 0, 0, 2, 0, 0, 0, 0, 0, 0, 10, 0, 0, 1,
    ]);
    f
}

fn wait_records(fp: &mut FastPath, n: usize) -> Vec<RingRecord> {
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut out = Vec::new();
    while out.len() < n && Instant::now() < deadline {
        out.extend(fp.drain_ring());
        std::thread::sleep(Duration::from_millis(5));
    }
    out
}

/// Reads every datagram that reaches `sock` within `wait`.
fn received(sock: &UdpSocket, wait: Duration) -> Vec<Vec<u8>> {
    sock.set_read_timeout(Some(wait)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 2048];
    while let Ok(n) = sock.recv(&mut buf) {
        out.push(buf[..n].to_vec());
    }
    out
}

#[test]
fn real_heartbeats_over_veth_driver_mode() {
    let a = Netns::new("hbxa");
    let b = Netns::new("hbxb");
    let (va, _vb) = veth(&a, "10.77.0.1/24", &b, "10.77.0.2/24");
    a.ip(&["addr", "add", "fd77::1/64", "dev", &va, "nodad"]);
    b.ip(&["addr", "add", "fd77::2/64", "dev", &_vb, "nodad"]);

    let (mut fp, listener) = a.run(|| {
        let mut fp = load();
        let mode = fp.attach(&va).expect("attach to veth");
        assert_eq!(mode, AttachMode::Driver, "veth supports native XDP");
        fp.register_node(NODE).unwrap();
        let l = UdpSocket::bind("0.0.0.0:694").unwrap();
        (fp, l)
    });
    let ifindex = fp.attachments()[0].ifindex;
    let (tx4, tx6) = b.run(|| {
        (
            UdpSocket::bind("0.0.0.0:0").unwrap(),
            UdpSocket::bind("[::]:0").unwrap(),
        )
    });
    let dst: SocketAddr = "10.77.0.1:694".parse().unwrap();

    // 5 valid heartbeats, then foreign-cluster and malformed ones.
    for seq in 1..=5u64 {
        let d = datagram(&header(CLUSTER, NODE, 42, seq), (seq as u32).to_be_bytes());
        tx4.send_to(&d, dst).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    for seq in 1..=3u64 {
        tx4.send_to(&datagram(&header(0x0bad_c105, NODE, 42, seq), [0; 4]), dst)
            .unwrap();
    }
    let mut malformed = datagram(&header(CLUSTER, NODE, 42, 6), [0; 4]);
    malformed.truncate(malformed.len() - 1);
    tx4.send_to(&malformed, dst).unwrap();
    tx4.send_to(
        b"not a heartbeat at all, but long enough to pass the header size",
        dst,
    )
    .unwrap();
    tx4.send_to(&datagram(&header(CLUSTER, 0x7777, 42, 1), [0; 4]), dst)
        .unwrap();
    // One over IPv6.
    let d6 = datagram(&header(CLUSTER, NODE, 42, 100), 100u32.to_be_bytes());
    tx6.send_to(&d6, "[fd77::1]:694".parse::<SocketAddr>().unwrap())
        .unwrap();

    let recs = wait_records(&mut fp, 6);
    assert_eq!(
        recs.len(),
        6,
        "one ring record per valid heartbeat: {recs:?}"
    );
    for (i, r) in recs[..5].iter().enumerate() {
        let seq = i as u64 + 1;
        assert_eq!(
            (r.node_id, r.generation, r.seq, r.ifindex),
            (NODE, 42, seq, ifindex)
        );
        assert_eq!(r.mac_tag, (seq as u32).to_be_bytes());
        if i > 0 {
            assert!(r.ktime_ns > recs[i - 1].ktime_ns, "timestamps increase");
            assert_eq!(
                r.prev_ktime_ns,
                recs[i - 1].ktime_ns,
                "kernel tracks the previous arrival"
            );
        }
    }
    assert_eq!(recs[5].seq, 100, "IPv6 heartbeat recorded");

    let peer = fp.peer(NODE, ifindex).unwrap();
    assert_eq!(peer.count, 6);
    assert_eq!((peer.generation, peer.last_seq), (42, 100));
    assert_eq!(peer.last_ktime_ns, recs[5].ktime_ns);
    assert!(
        peer.max_gap_ns >= 1_000_000,
        "2 ms spacing gives >= 1 ms max gap"
    );

    let c = fp.counters();
    assert_eq!(c["accepted"], 6);
    assert_eq!(c["foreign_cluster"], 3);
    assert_eq!(c["bad_length"], 1);
    assert_eq!(c["bad_magic"], 1);
    assert_eq!(c["unknown_node"], 1);

    // Only the five valid IPv4 heartbeats reached the IPv4 socket: every
    // foreign/malformed datagram was dropped in XDP.
    let got = received(&listener, Duration::from_millis(300));
    let seqs: Vec<u64> = got
        .iter()
        .map(|d| u64::from_be_bytes(d[24..32].try_into().unwrap()))
        .collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
}

#[test]
fn loopback_falls_back_to_skb_mode() {
    let ns = Netns::new("hbxl");
    let (mut fp, listener, tx) = ns.run(|| {
        let mut fp = load();
        let mode = fp.attach("lo").expect("attach to lo");
        assert_eq!(mode, AttachMode::Skb, "lo has no native XDP: generic mode");
        fp.register_node(NODE).unwrap();
        (
            fp,
            UdpSocket::bind("127.0.0.1:694").unwrap(),
            UdpSocket::bind("127.0.0.1:0").unwrap(),
        )
    });
    tx.send_to(
        &datagram(&header(CLUSTER, NODE, 1, 9), [9; 4]),
        "127.0.0.1:694",
    )
    .unwrap();
    tx.send_to(
        &datagram(&header(CLUSTER ^ 1, NODE, 1, 9), [9; 4]),
        "127.0.0.1:694",
    )
    .unwrap();
    let recs = wait_records(&mut fp, 1);
    assert_eq!(recs.len(), 1);
    assert_eq!((recs[0].seq, recs[0].ifindex), (9, 1));
    assert_eq!(fp.counter(Counter::Foreign), 1);
    assert_eq!(received(&listener, Duration::from_millis(200)).len(), 1);
}
