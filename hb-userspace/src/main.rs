//! `hb`: the command-line entry point (daemon and control client).
//!
//! Errors end here, with `anyhow` context that says what to do; everything
//! below is library code with typed errors.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use hb_userspace::{
    config::{Config, Overrides},
    control::{self, Request},
    logger::Logger,
    status::StatusReport,
};

#[derive(Parser)]
#[command(
    name = "hb",
    version,
    about = "Heartbeat-compatible high-availability daemon with an XDP fast path"
)]
struct Cli {
    /// Directory with ha.cf, haresources and authkeys.
    #[arg(short = 'c', long, global = true, default_value = "/etc/ha.d")]
    config_dir: PathBuf,
    /// This node's name (default: `uname -n`).
    #[arg(long, global = true)]
    node: Option<String>,
    /// Control socket (default: `control_socket` in ha.cf, else /run/hb/hb.sock).
    #[arg(long, global = true)]
    socket: Option<PathBuf>,
    /// State directory for the generation number (default: `state_dir`, else /var/lib/hb).
    #[arg(long, global = true)]
    state_dir: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the daemon in the foreground (logs to stderr and `logfile`).
    Run,
    /// Validate the configuration without starting; exit 1 on errors.
    Check,
    /// Show nodes, links, resource groups and counters.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Give resource groups away: all, local (preferred here) or foreign.
    Standby {
        #[arg(default_value = "all")]
        which: String,
    },
    /// Take resource groups over: all, local or foreign.
    Takeover {
        #[arg(default_value = "all")]
        which: String,
    },
    /// Forget failures (and retry a blocked stop) of one group, or all.
    Cleanup { group: Option<usize> },
    /// Live per-heartbeat latency trace (arrival, gap, userspace delay).
    Trace {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
        /// Stop after this many heartbeats.
        #[arg(long)]
        count: Option<u64>,
        /// Stop after this many seconds (and print a histogram summary).
        #[arg(long)]
        seconds: Option<f64>,
    },
    /// Recommend warntime/deadtime from the gaps measured so far.
    Tune {
        #[arg(long)]
        json: bool,
        /// Read a `hb trace --json` recording instead of asking the daemon.
        #[arg(long)]
        from: Vec<PathBuf>,
    },
}

fn overrides(cli: &Cli) -> Overrides {
    Overrides {
        node: cli.node.clone(),
        control_socket: cli.socket.clone(),
        state_dir: cli.state_dir.clone(),
    }
}

/// The control socket for client commands, without requiring a config
/// that passes every check (e.g. when authkeys is being fixed).
fn socket_path(cli: &Cli) -> PathBuf {
    if let Some(s) = &cli.socket {
        return s.clone();
    }
    if let Ok(s) = std::fs::read_to_string(cli.config_dir.join("ha.cf")) {
        for l in hb_userspace::config::lex::lines(&s, false) {
            let t = hb_userspace::config::lex::tokens(&l.text);
            if t.len() == 2 && t[0] == "control_socket" {
                return PathBuf::from(t[1]);
            }
        }
    }
    PathBuf::from("/run/hb/hb.sock")
}

fn load(cli: &Cli) -> Result<Config> {
    Config::load(&cli.config_dir, &overrides(cli))
        .map_err(|e| anyhow::anyhow!("{e}\n(configuration in {})", cli.config_dir.display()))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    match rt.block_on(dispatch(&cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hb: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: &Cli) -> Result<ExitCode> {
    match &cli.cmd {
        Cmd::Run => {
            let cfg = load(cli).context("hb will not start until the configuration is fixed")?;
            Logger::new(
                cfg.debug,
                cfg.logfile.as_deref(),
                cfg.debugfile.as_deref(),
                cfg.logfacility.as_deref(),
            )
            .context("opening the log files named in ha.cf")?
            .install();
            hb_userspace::engine::run(cfg).await.context("hb stopped")?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Check => check(cli),
        Cmd::Status { json } => {
            let v = control::request(&socket_path(cli), &Request::Status).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&v["status"])?);
            } else {
                let r: StatusReport = serde_json::from_value(v["status"].clone())
                    .context("decoding the daemon's status")?;
                print!("{}", r.render());
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Standby { which } | Cmd::Takeover { which } => {
            let req = match &cli.cmd {
                Cmd::Standby { .. } => Request::Standby {
                    which: which.clone(),
                },
                _ => Request::Takeover {
                    which: which.clone(),
                },
            };
            let v = control::request(&socket_path(cli), &req).await?;
            println!("groups {}: {}", which, v["groups"]);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Cleanup { group } => {
            let v =
                control::request(&socket_path(cli), &Request::Cleanup { group: *group }).await?;
            println!("cleaned up groups {}", v["groups"]);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Trace {
            json,
            count,
            seconds,
        } => {
            hb_userspace::trace::run_client(
                &socket_path(cli),
                *json,
                *count,
                seconds.map(Duration::from_secs_f64),
            )
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Tune { json, from } => {
            hb_userspace::tune::run_client(&socket_path(cli), from, *json).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn check(cli: &Cli) -> Result<ExitCode> {
    let cfg = match Config::load(&cli.config_dir, &overrides(cli)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            eprintln!(
                "hb check: {} error(s) in {}",
                e.0.len(),
                cli.config_dir.display()
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    for w in &cfg.warnings {
        eprintln!("warning: {w}");
    }
    print_summary(&cfg, &cli.config_dir);
    Ok(ExitCode::SUCCESS)
}

fn print_summary(cfg: &Config, dir: &Path) {
    let t = &cfg.timing;
    println!("{}: configuration OK", dir.display());
    println!(
        "  cluster {} (id {:#010x}), this node: {}",
        cfg.cluster_name,
        cfg.cluster_id,
        cfg.local_name()
    );
    println!("  nodes: {}", cfg.nodes.join(", "));
    println!(
        "  keepalive {:?}, warntime {:?}, deadtime {:?}, initdead {:?}, auto_failback {:?}",
        t.keepalive, t.warntime, t.deadtime, t.initdead, cfg.auto_failback
    );
    for m in &cfg.media {
        println!("  medium: {}", m.medium.describe());
    }
    if !cfg.ping.is_empty() {
        println!(
            "  ping targets: {}",
            cfg.ping
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    for (i, g) in cfg.groups.iter().enumerate() {
        println!(
            "  group {i} (preferred {}): {}",
            g.preferred,
            g.resources
                .iter()
                .map(|r| r.raw.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    println!(
        "  authkeys: sending with key {} ({}), {} key(s) accepted",
        cfg.auth.send,
        cfg.auth.send_key().alg.name(),
        cfg.auth.keys.len()
    );
}
