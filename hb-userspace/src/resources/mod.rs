//! Resource groups: placement policy and the local state machine (pure),
//! plus the operations that touch the system (IP addresses via rtnetlink,
//! gratuitous ARP, scripts and OCF agents).

pub mod agent;
pub mod arp;
pub mod ipaddr;
pub mod manager;
pub mod policy;
pub mod runner;
