//! Shared helpers for hb's integration tests (see `tests/tests/*.rs`):
//! RAII network namespaces and veth pairs, crafted frames, and (later) a
//! harness that runs whole hb clusters in namespaces.

pub mod bench;
pub mod cluster;
pub mod frames;
pub mod netfault;
pub mod netns;
