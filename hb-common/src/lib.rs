//! Types shared by the XDP program (`hb-ebpf`) and the daemon (`hb-userspace`).
//!
//! Everything here is `#![no_std]`, allocation-free and `#[repr(C)]` where it
//! crosses the kernel/user boundary, so the kernel and the daemon agree on the
//! bytes by construction. The one validation routine for the fixed heartbeat
//! header ([`wire::classify`]) lives here too and is called by *both* the XDP
//! program and the userspace decoder: a packet the kernel lets through is a
//! packet userspace would have accepted at the header level, and vice versa.
//!
//! With the `user` feature the map value types implement `aya::Pod`.
#![no_std]

pub mod ids;
pub mod maps;
pub mod wire;

pub use ids::{cluster_id, node_id};
pub use maps::{Counter, PeerKey, PeerState, RingRecord};
pub use wire::{AuthAlg, Header, Reject, Verdict};
