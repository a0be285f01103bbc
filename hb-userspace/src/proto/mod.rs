//! hb's heartbeat protocol: payload TLVs, authentication, the whole-packet
//! codec and replay protection. The fixed header itself lives in
//! `hb_common::wire` (shared with the XDP program).

pub mod auth;
pub mod packet;
pub mod payload;
pub mod replay;

pub use packet::{decode, encode, DecodeError, Heartbeat, SendInfo};
pub use payload::{Payload, PayloadError};
pub use replay::{ReplayGuard, ReplayVerdict};
