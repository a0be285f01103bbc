//! hb: a Heartbeat-compatible high-availability daemon with an XDP fast path.
//!
//! Library crate of the `hb` binary. The pure, I/O-free core (membership and
//! resource state machines, config parsers, wire codec) is tested with a
//! virtual clock; the I/O around it (sockets, XDP, netlink, scripts) lives in
//! separate modules wired together by `engine`.

pub mod config;
pub mod control;
pub mod engine;
pub mod gapstats;
pub mod generation;
pub mod groupset;
pub mod logger;
pub mod membership;
pub mod net;
pub mod netif;
pub mod node;
pub mod proto;
pub mod resources;
pub mod sender;
pub mod status;
pub mod time;
pub mod trace;
pub mod tune;
pub mod util;
pub mod xdp;
