//! Stable numeric identifiers derived from names in the configuration.
//!
//! Heartbeat identifies nodes by `uname -n` and clusters by nothing at all;
//! hb puts a 32-bit node id and a 32-bit cluster id in every packet so the XDP
//! program can filter with two integer compares. Both are FNV-1a hashes of
//! names every node already shares (the `node` and `cluster` directives), so no
//! extra configuration has to be kept in sync. `0` is never produced: it is
//! reserved for "unset".

/// Incremental 32-bit FNV-1a, ASCII case-folded (Heartbeat compares node
/// names case-insensitively).
#[derive(Clone, Copy, Debug)]
pub struct Fnv1a(u32);

impl Fnv1a {
    pub const OFFSET: u32 = 0x811c_9dc5;
    pub const PRIME: u32 = 0x0100_0193;

    pub const fn new() -> Self {
        Self(Self::OFFSET)
    }

    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= b.to_ascii_lowercase() as u32;
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }

    /// The hash, with `0` mapped to `1` so that `0` can mean "unset".
    pub fn finish(&self) -> u32 {
        if self.0 == 0 {
            1
        } else {
            self.0
        }
    }
}

impl Default for Fnv1a {
    fn default() -> Self {
        Self::new()
    }
}

/// The node id of a node name (case-insensitive).
pub fn node_id(name: &[u8]) -> u32 {
    let mut h = Fnv1a::new();
    h.write(name);
    h.finish()
}

/// The cluster id: a hash of the cluster name and every node name, in the
/// order given (callers sort them). Two clusters on one segment that differ in
/// name *or* membership therefore get different ids and filter each other out
/// in XDP (Heartbeat FAQ q13). An explicit `cluster_id` directive overrides it.
pub fn cluster_id<'a>(cluster_name: &[u8], nodes: impl IntoIterator<Item = &'a [u8]>) -> u32 {
    let mut h = Fnv1a::new();
    h.write(cluster_name);
    for n in nodes {
        h.write(&[0]);
        h.write(n);
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_reference_vectors() {
        // Published FNV-1a 32-bit vectors (lowercase input, so folding is a no-op).
        let cases: &[(&[u8], u32)] = &[
            (b"", 0x811c_9dc5),
            (b"a", 0xe40c_292c),
            (b"foobar", 0xbf9c_f968),
        ];
        for (input, want) in cases {
            let mut h = Fnv1a::new();
            h.write(input);
            assert_eq!(h.0, *want, "fnv1a({:?})", input);
        }
    }

    #[test]
    fn node_ids_fold_case_and_differ() {
        assert_eq!(node_id(b"Node1"), node_id(b"node1"));
        assert_ne!(node_id(b"node1"), node_id(b"node2"));
        assert_ne!(node_id(b"node1"), 0);
    }

    #[test]
    fn cluster_id_depends_on_name_and_members() {
        let a = cluster_id(b"linux-ha", [&b"a"[..], b"b"]);
        assert_eq!(a, cluster_id(b"LINUX-HA", [&b"A"[..], b"B"]));
        assert_ne!(a, cluster_id(b"other", [&b"a"[..], b"b"]));
        assert_ne!(a, cluster_id(b"linux-ha", [&b"a"[..], b"c"]));
        // The separator keeps ["ab"] and ["a","b"] apart.
        assert_ne!(
            cluster_id(b"x", [&b"ab"[..]]),
            cluster_id(b"x", [&b"a"[..], b"b"])
        );
    }
}
