//! `haresources` parser: one resource group per logical line,
//! `<preferred-node> <resource> <resource> ...`, started left to right and
//! stopped right to left (Heartbeat's ResourceManager).
//!
//! Resource syntax:
//! - `10.0.0.10`, `IPaddr::10.0.0.10/24/eth0:0/10.0.0.255`, `IPaddr2::...`,
//!   `IPv6addr::fd00::10/64/eth0` -> the built-in rtnetlink IP address
//!   resource, `ip[/bits[/iface[:label]][/broadcast]]` (a numeric third field
//!   is the broadcast address, as in Heartbeat);
//! - `ocf:<provider>:<agent>[::param=value...]` -> an OCF resource agent
//!   under `$ocf_root/resource.d/<provider>/<agent>`;
//! - `Name[::arg...]` -> a Heartbeat/LSB script, looked up in `resource_dir`
//!   (`/etc/ha.d/resource.d`) then `init_dir` (`/etc/init.d`), called as
//!   `Name arg... start|stop|status`.

use std::{
    net::{IpAddr, Ipv4Addr},
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use super::{lex, ConfigErrors, ResourceSettings};

/// Limits of the group bitmaps carried in heartbeats.
pub const MAX_GROUPS: usize = 1024;

/// The built-in IP address resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpSpec {
    pub addr: IpAddr,
    pub prefix: Option<u8>,
    pub ifname: Option<String>,
    /// Full IFA_LABEL, e.g. `eth0:1` (IPv4 only).
    pub label: Option<String>,
    pub broadcast: Option<Ipv4Addr>,
}

/// An OCF resource agent invocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OcfSpec {
    pub provider: String,
    pub agent: String,
    pub params: Vec<(String, String)>,
    /// OCF_RESOURCE_INSTANCE: `<agent>_<group>_<position>` (stable as long
    /// as haresources is unchanged, identical on every node).
    pub instance: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResourceKind {
    Ip(IpSpec),
    Ocf(OcfSpec),
    /// Heartbeat/LSB script; `path` is filled by [`resolve_scripts`].
    Script {
        name: String,
        args: Vec<String>,
        path: PathBuf,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resource {
    /// As written in haresources.
    pub raw: String,
    pub kind: ResourceKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceGroup {
    /// Preferred node (lowercase).
    pub preferred: String,
    pub resources: Vec<Resource>,
    pub line: usize,
}

impl ResourceGroup {
    /// A short name for logs and status: the first resource.
    pub fn name(&self) -> &str {
        &self.resources[0].raw
    }
}

/// Parses `ip[/bits[/iface[:label]][/broadcast]]`.
pub fn parse_ip_spec(s: &str) -> Result<IpSpec, String> {
    let parts: Vec<&str> = s.split('/').collect();
    if parts.len() > 4 {
        return Err(format!(
            "`{s}`: too many `/` fields; syntax is ip[/bits[/iface[:label]][/broadcast]]"
        ));
    }
    let addr: IpAddr = parts[0]
        .parse()
        .map_err(|_| format!("`{}` is not an IP address", parts[0]))?;
    if addr.is_unspecified() || addr.is_multicast() || addr.is_loopback() {
        return Err(format!(
            "`{addr}` cannot be a service address (unspecified, multicast or loopback)"
        ));
    }
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let mut spec = IpSpec {
        addr,
        prefix: None,
        ifname: None,
        label: None,
        broadcast: None,
    };
    if let Some(bits) = parts.get(1).filter(|b| !b.is_empty()) {
        let b: u8 = bits
            .parse()
            .ok()
            .filter(|b| *b >= 1 && *b <= max)
            .ok_or_else(|| format!("`{bits}` in `{s}` is not a prefix length from 1 to {max}"))?;
        spec.prefix = Some(b);
    }
    let mut rest = parts.iter().skip(2);
    if let Some(third) = rest.next() {
        // Heartbeat: a numeric third field is the broadcast address.
        if let Ok(b) = third.parse::<Ipv4Addr>() {
            spec.broadcast = Some(b);
        } else if !third.is_empty() {
            let (ifname, label) = match third.split_once(':') {
                Some((i, _)) => (i, Some(third.to_string())),
                None => (*third, None),
            };
            if ifname.is_empty() || ifname.len() > 15 {
                return Err(format!("`{third}` in `{s}` is not an interface name"));
            }
            if label.as_ref().is_some_and(|l| l.len() > 15) {
                return Err(format!(
                    "label `{third}` in `{s}` is longer than 15 characters"
                ));
            }
            if label.is_some() && addr.is_ipv6() {
                return Err(format!(
                    "`{s}`: IPv6 addresses cannot have interface labels"
                ));
            }
            spec.ifname = Some(ifname.to_string());
            spec.label = label;
        }
    }
    if let Some(fourth) = rest.next() {
        let b: Ipv4Addr = fourth
            .parse()
            .map_err(|_| format!("`{fourth}` in `{s}` is not a broadcast address"))?;
        if addr.is_ipv6() {
            return Err(format!("`{s}`: IPv6 addresses have no broadcast address"));
        }
        spec.broadcast = Some(b);
    }
    Ok(spec)
}

fn parse_resource(tok: &str, group: usize, pos: usize) -> Result<ResourceKind, String> {
    // A bare address (Heartbeat: IPv4; hb also takes IPv6) means IPaddr.
    let bare_ip = tok.split('/').next().and_then(|a| a.parse::<IpAddr>().ok());
    if bare_ip.is_some() {
        return parse_ip_spec(tok).map(ResourceKind::Ip);
    }
    let (ty, rest) = match tok.split_once("::") {
        Some((t, r)) => (t, Some(r)),
        None => (tok, None),
    };
    match ty.to_ascii_lowercase().as_str() {
        "ipaddr" | "ipaddr2" | "ipv6addr" => {
            let arg = rest.ok_or_else(|| {
                format!("`{tok}`: {ty} needs an address, e.g. `{ty}::10.0.0.10/24/eth0`")
            })?;
            let spec = parse_ip_spec(arg)?;
            if ty.eq_ignore_ascii_case("ipv6addr") && !spec.addr.is_ipv6() {
                return Err(format!("`{tok}`: IPv6addr needs an IPv6 address"));
            }
            Ok(ResourceKind::Ip(spec))
        }
        t if t.starts_with("ocf:") => {
            let f: Vec<&str> = ty.split(':').collect();
            if f.len() != 3 || f[1].is_empty() || f[2].is_empty() {
                return Err(format!("`{tok}`: OCF resources are written `ocf:<provider>:<agent>[::param=value...]`, e.g. `ocf:heartbeat:Dummy`"));
            }
            let mut params = Vec::new();
            for p in rest
                .map(|r| r.split("::").collect::<Vec<_>>())
                .unwrap_or_default()
            {
                let (k, v) = p
                    .split_once('=')
                    .ok_or_else(|| format!("`{tok}`: OCF parameter `{p}` must be `name=value`"))?;
                if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(format!("`{tok}`: `{k}` is not a valid OCF parameter name"));
                }
                params.push((k.to_string(), v.to_string()));
            }
            Ok(ResourceKind::Ocf(OcfSpec {
                provider: f[1].to_string(),
                agent: f[2].to_string(),
                params,
                instance: format!("{}_{group}_{pos}", f[2]),
            }))
        }
        _ => {
            if ty.is_empty() || ty.contains('/') {
                return Err(format!(
                    "`{tok}` is not a resource name (a script in resource.d or init.d)"
                ));
            }
            Ok(ResourceKind::Script {
                name: ty.to_string(),
                args: rest
                    .map(|r| r.split("::").map(str::to_string).collect())
                    .unwrap_or_default(),
                path: PathBuf::new(),
            })
        }
    }
}

/// Parses haresources content against the node list from ha.cf.
pub fn parse(
    file: &Path,
    content: &str,
    nodes: &[String],
) -> Result<Vec<ResourceGroup>, ConfigErrors> {
    let mut errs = ConfigErrors::default();
    let mut groups: Vec<ResourceGroup> = Vec::new();
    let mut ips: Vec<(IpAddr, usize)> = Vec::new();
    for l in lex::lines(content, true) {
        let toks: Vec<&str> = l.text.split_whitespace().collect();
        let node = toks[0].to_ascii_lowercase();
        if !nodes.is_empty() && !nodes.contains(&node) {
            errs.push(
                file,
                l.number,
                format!(
                    "preferred node `{}` is not a `node` in ha.cf (nodes: {})",
                    toks[0],
                    nodes.join(", ")
                ),
            );
        }
        if toks.len() < 2 {
            errs.push(
                file,
                l.number,
                format!(
                    "group for `{}` lists no resources: `<node> <resource> [<resource> ...]`",
                    toks[0]
                ),
            );
            continue;
        }
        let gi = groups.len();
        let mut resources = Vec::new();
        for (pos, tok) in toks[1..].iter().enumerate() {
            match parse_resource(tok, gi, pos) {
                Ok(kind) => {
                    if let ResourceKind::Ip(spec) = &kind {
                        if let Some((_, first)) = ips.iter().find(|(a, _)| *a == spec.addr) {
                            errs.push(
                                file,
                                l.number,
                                format!("address {} is already managed on line {first}", spec.addr),
                            );
                        }
                        ips.push((spec.addr, l.number));
                    }
                    resources.push(Resource {
                        raw: tok.to_string(),
                        kind,
                    });
                }
                Err(e) => errs.push(file, l.number, e),
            }
        }
        groups.push(ResourceGroup {
            preferred: node,
            resources,
            line: l.number,
        });
    }
    if groups.len() > MAX_GROUPS {
        errs.push(
            file,
            0,
            format!(
                "{} resource groups; at most {MAX_GROUPS} are supported",
                groups.len()
            ),
        );
    }
    errs.into_result(groups)
}

fn executable(p: &Path) -> bool {
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Finds every script and OCF agent on disk (so `hb check` catches a typo
/// before a failover needs it), filling `Script::path`.
pub fn resolve_scripts(
    file: &Path,
    groups: &mut [ResourceGroup],
    s: &ResourceSettings,
    errs: &mut ConfigErrors,
) {
    for g in groups.iter_mut() {
        for r in &mut g.resources {
            match &mut r.kind {
                ResourceKind::Script { name, path, .. } => {
                    let cands = [s.resource_dir.join(&*name), s.init_dir.join(&*name)];
                    match cands.iter().find(|p| executable(p)) {
                        Some(p) => *path = p.clone(),
                        None => errs.push(
                            file,
                            g.line,
                            format!(
                            "resource script `{name}` not found (or not executable) in {} or {}",
                            s.resource_dir.display(),
                            s.init_dir.display()
                        ),
                        ),
                    }
                }
                ResourceKind::Ocf(o) => {
                    let p = s
                        .ocf_root
                        .join("resource.d")
                        .join(&o.provider)
                        .join(&o.agent);
                    if !executable(&p) {
                        errs.push(file, g.line, format!(
                            "OCF agent {} not found or not executable (install the agent, e.g. Debian's resource-agents package)",
                            p.display()
                        ));
                    }
                }
                ResourceKind::Ip(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes() -> Vec<String> {
        vec!["alpha".into(), "beta".into()]
    }

    #[test]
    fn ip_specs_table() {
        let v4 = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        let cases: &[(&str, IpSpec)] = &[
            (
                "10.0.0.1",
                IpSpec {
                    addr: "10.0.0.1".parse().unwrap(),
                    prefix: None,
                    ifname: None,
                    label: None,
                    broadcast: None,
                },
            ),
            (
                "10.0.0.1/24",
                IpSpec {
                    addr: "10.0.0.1".parse().unwrap(),
                    prefix: Some(24),
                    ifname: None,
                    label: None,
                    broadcast: None,
                },
            ),
            (
                "10.0.0.1/24/eth0",
                IpSpec {
                    addr: "10.0.0.1".parse().unwrap(),
                    prefix: Some(24),
                    ifname: Some("eth0".into()),
                    label: None,
                    broadcast: None,
                },
            ),
            (
                "135.9.8.7/24/eth0:1/135.9.8.210",
                IpSpec {
                    addr: "135.9.8.7".parse().unwrap(),
                    prefix: Some(24),
                    ifname: Some("eth0".into()),
                    label: Some("eth0:1".into()),
                    broadcast: Some(v4("135.9.8.210")),
                },
            ),
            (
                "10.0.0.1/24/10.0.0.255",
                IpSpec {
                    addr: "10.0.0.1".parse().unwrap(),
                    prefix: Some(24),
                    ifname: None,
                    label: None,
                    broadcast: Some(v4("10.0.0.255")),
                },
            ),
            (
                "fd00::10/64/eth1",
                IpSpec {
                    addr: "fd00::10".parse().unwrap(),
                    prefix: Some(64),
                    ifname: Some("eth1".into()),
                    label: None,
                    broadcast: None,
                },
            ),
        ];
        for (s, want) in cases {
            assert_eq!(&parse_ip_spec(s).unwrap(), want, "{s}");
        }
        for bad in [
            "10.0.0.1/33",
            "10.0.0.1/0",
            "300.0.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "10.0.0.1/24/eth0/x",
            "fd00::1/64/eth0:1",
            "10.0.0.1/24/eth0/1.1.1.1/x",
            "127.0.0.2",
        ] {
            assert!(parse_ip_spec(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn groups_and_kinds() {
        let src = "\
alpha 10.0.0.10 IPaddr::10.0.0.11/24/eth0 Filesystem::/dev/sda1::/data::ext3 httpd
beta ocf:heartbeat:Dummy::state=/tmp/d1::fake=x \\
     IPv6addr::fd00::10/64/eth0
BETA IPaddr2::10.0.0.12
";
        let g = parse(Path::new("haresources"), src, &nodes()).unwrap();
        assert_eq!(g.len(), 3);
        assert_eq!(g[0].preferred, "alpha");
        assert_eq!(g[0].resources.len(), 4);
        assert!(
            matches!(&g[0].resources[2].kind, ResourceKind::Script { name, args, .. }
            if name == "Filesystem" && args == &["/dev/sda1", "/data", "ext3"])
        );
        assert!(
            matches!(&g[0].resources[3].kind, ResourceKind::Script { name, args, .. } if name == "httpd" && args.is_empty())
        );
        assert_eq!(g[1].line, 2);
        match &g[1].resources[0].kind {
            ResourceKind::Ocf(o) => {
                assert_eq!(
                    (o.provider.as_str(), o.agent.as_str()),
                    ("heartbeat", "Dummy")
                );
                assert_eq!(
                    o.params,
                    vec![
                        ("state".into(), "/tmp/d1".into()),
                        ("fake".into(), "x".into())
                    ]
                );
                assert_eq!(o.instance, "Dummy_1_0");
            }
            k => panic!("{k:?}"),
        }
        assert!(matches!(&g[1].resources[1].kind, ResourceKind::Ip(s) if s.addr.is_ipv6()));
        assert_eq!(g[2].preferred, "beta", "node names are case-insensitive");
        assert_eq!(g[0].name(), "10.0.0.10");
        let v6 = parse(Path::new("haresources"), "alpha fd00::20/64\n", &nodes()).unwrap();
        assert!(matches!(&v6[0].resources[0].kind, ResourceKind::Ip(s) if s.prefix == Some(64)));
    }

    #[test]
    fn errors_name_line() {
        let cases: &[(&str, &str)] = &[
            ("gamma 10.0.0.1\n", "haresources:1: preferred node `gamma` is not a `node` in ha.cf (nodes: alpha, beta)"),
            ("alpha\n", "haresources:1: group for `alpha` lists no resources"),
            ("alpha 10.0.0.1/40\n", "haresources:1: `40` in `10.0.0.1/40` is not a prefix length from 1 to 32"),
            ("alpha 10.0.0.1\nbeta IPaddr::10.0.0.1/24\n", "haresources:2: address 10.0.0.1 is already managed on line 1"),
            ("alpha ocf:heartbeat\n", "haresources:1: `ocf:heartbeat`: OCF resources are written"),
            ("alpha ocf:heartbeat:Dummy::state\n", "OCF parameter `state` must be `name=value`"),
            ("alpha IPaddr\n", "IPaddr needs an address"),
            ("alpha IPv6addr::10.0.0.1\n", "IPv6addr needs an IPv6 address"),
        ];
        for (src, want) in cases {
            let e = parse(Path::new("haresources"), src, &nodes())
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{src:?}\n got: {e}\nwant: {want}");
        }
    }

    #[test]
    fn scripts_are_resolved_or_reported() {
        let dir = std::env::temp_dir().join(format!("hb-res-{}", std::process::id()));
        let rd = dir.join("resource.d");
        let id = dir.join("init.d");
        std::fs::create_dir_all(&rd).unwrap();
        std::fs::create_dir_all(&id).unwrap();
        for (p, mode) in [
            (rd.join("web"), 0o755),
            (id.join("db"), 0o755),
            (rd.join("noexec"), 0o644),
        ] {
            std::fs::write(&p, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        let settings = ResourceSettings {
            rsctmp_dir: dir.join("tmp"),
            resource_dir: rd.clone(),
            init_dir: id.clone(),
            ocf_root: dir.join("ocf"),
            start_timeout: Default::default(),
            stop_timeout: Default::default(),
            monitor_timeout: Default::default(),
            monitor_interval: Default::default(),
            stop_retries: 0,
            stop_retry_interval: Default::default(),
            on_stop_failure: super::super::StopFailure::Block,
            arp_count: 0,
            arp_interval: Default::default(),
        };
        let f = Path::new("haresources");
        let mut g = parse(
            f,
            "alpha web db\nbeta noexec ocf:heartbeat:Nope\n",
            &nodes(),
        )
        .unwrap();
        let mut errs = ConfigErrors::default();
        resolve_scripts(f, &mut g, &settings, &mut errs);
        assert!(
            matches!(&g[0].resources[0].kind, ResourceKind::Script { path, .. } if *path == rd.join("web"))
        );
        assert!(
            matches!(&g[0].resources[1].kind, ResourceKind::Script { path, .. } if *path == id.join("db"))
        );
        let e = errs.to_string();
        assert!(
            e.contains("haresources:2: resource script `noexec` not found (or not executable)"),
            "{e}"
        );
        assert!(e.contains("ocf/resource.d/heartbeat/Nope not found"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
