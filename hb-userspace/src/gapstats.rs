//! Heartbeat gap statistics: a log-bucketed histogram (8 buckets per power
//! of two, so percentiles are within ~9%) plus exact count, max and sum.
//! Mergeable and serializable, so `hb tune` can combine weeks of recordings.

use std::time::Duration;

/// Buckets per power of two.
const SUB: u32 = 8;
/// Bucket 0 holds gaps under 512 ns; bucket `1 + (log2 - 9) * SUB + frac`
/// holds `[2^log2 * (1 + frac/8), 2^log2 * (1 + (frac+1)/8))` ns.
const MIN_LOG2: u32 = 9;

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GapStats {
    pub count: u64,
    pub sum_ns: u128,
    pub max_ns: u64,
    /// Sparse buckets: (index, count), sorted by index.
    buckets: Vec<(u16, u64)>,
}

fn bucket_of(ns: u64) -> u16 {
    if ns < (1 << MIN_LOG2) {
        return 0;
    }
    let log2 = 63 - ns.leading_zeros();
    let frac = ((ns >> (log2 - 3)) & 7) as u32;
    (1 + (log2 - MIN_LOG2) * SUB + frac) as u16
}

/// Exclusive upper bound (ns) of bucket `b`.
fn bucket_upper(b: u16) -> u64 {
    if b == 0 {
        return 1 << MIN_LOG2;
    }
    let b = (b - 1) as u32;
    let log2 = b / SUB + MIN_LOG2;
    let frac = b % SUB;
    let upper = ((1u128 << log2) * (SUB + frac + 1) as u128) / SUB as u128;
    upper.min(u64::MAX as u128) as u64
}

impl GapStats {
    pub fn record(&mut self, gap: Duration) {
        let ns = gap.as_nanos().min(u64::MAX as u128) as u64;
        self.count += 1;
        self.sum_ns += ns as u128;
        self.max_ns = self.max_ns.max(ns);
        let b = bucket_of(ns);
        match self.buckets.binary_search_by_key(&b, |(i, _)| *i) {
            Ok(p) => self.buckets[p].1 += 1,
            Err(p) => self.buckets.insert(p, (b, 1)),
        }
    }

    pub fn merge(&mut self, o: &GapStats) {
        self.count += o.count;
        self.sum_ns += o.sum_ns;
        self.max_ns = self.max_ns.max(o.max_ns);
        for (b, c) in &o.buckets {
            match self.buckets.binary_search_by_key(b, |(i, _)| *i) {
                Ok(p) => self.buckets[p].1 += c,
                Err(p) => self.buckets.insert(p, (*b, *c)),
            }
        }
    }

    pub fn max(&self) -> Duration {
        Duration::from_nanos(self.max_ns)
    }

    pub fn mean(&self) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos((self.sum_ns / self.count as u128) as u64)
    }

    /// The `p`-th percentile (0..=100): an upper bound within one bucket,
    /// never above the exact maximum.
    pub fn percentile(&self, p: f64) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * self.count as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (b, c) in &self.buckets {
            seen += c;
            if seen >= rank {
                return Duration::from_nanos(bucket_upper(*b).min(self.max_ns));
            }
        }
        self.max()
    }

    /// (upper bound, count) of every non-empty bucket, for histograms/plots.
    pub fn histogram(&self) -> Vec<(Duration, u64)> {
        self.buckets
            .iter()
            .map(|(b, c)| (Duration::from_nanos(bucket_upper(*b)), *c))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for ns in [
            512u64,
            1000,
            1500,
            2047,
            2048,
            9999,
            100_000,
            999_999,
            12_345_678,
            10_000_000_000,
            u64::MAX,
        ] {
            let b = bucket_of(ns);
            assert!(b >= last, "{ns}ns");
            last = b;
            let up = bucket_upper(b);
            assert!(
                up > ns || ns == u64::MAX,
                "{ns}ns not below its bucket upper bound {up}"
            );
            assert!(
                up as f64 <= ns as f64 * 1.126,
                "{ns}ns: bound {up} too loose"
            );
        }
        assert_eq!(bucket_of(100), 0);
    }

    #[test]
    fn percentiles_of_known_distribution() {
        let mut s = GapStats::default();
        for i in 1..=1000u64 {
            s.record(Duration::from_micros(i * 100)); // 0.1 .. 100 ms
        }
        assert_eq!(s.count, 1000);
        assert_eq!(s.max(), Duration::from_millis(100));
        let p50 = s.percentile(50.0).as_secs_f64() * 1e3;
        assert!((50.0..=50.0 * 1.13).contains(&p50), "p50 {p50}");
        let p99 = s.percentile(99.0).as_secs_f64() * 1e3;
        assert!((99.0..=100.0).contains(&p99), "p99 {p99}");
        assert_eq!(s.percentile(100.0), Duration::from_millis(100));
        let mean = s.mean().as_secs_f64() * 1e3;
        assert!((mean - 50.05).abs() < 0.01, "{mean}");
    }

    #[test]
    fn merge_equals_recording_everything() {
        let (mut a, mut b, mut all) = (
            GapStats::default(),
            GapStats::default(),
            GapStats::default(),
        );
        for i in 0..500u64 {
            let d = Duration::from_micros(i * 37 % 20_000);
            if i % 2 == 0 {
                a.record(d)
            } else {
                b.record(d)
            }
            all.record(d);
        }
        a.merge(&b);
        assert_eq!(a, all);
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<GapStats>(&json).unwrap(), a);
    }
}
