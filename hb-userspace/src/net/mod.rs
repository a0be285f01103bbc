//! Heartbeat transports: UDP media, serial links, and ICMP ping targets.

pub mod ping;
pub mod serial;
pub mod udp;
