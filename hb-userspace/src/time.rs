//! Monotonic time as passed into the pure core.
//!
//! [`Mono`] is nanoseconds on `CLOCK_MONOTONIC`, the clock of
//! `bpf_ktime_get_ns()`, so XDP arrival times and userspace times compare
//! directly. The core never reads a clock: callers pass `now` in, and tests
//! drive it with a virtual clock.

use std::{fmt, ops::Add, time::Duration};

/// A point in time: nanoseconds on `CLOCK_MONOTONIC`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mono(u64);

impl Mono {
    pub const ZERO: Mono = Mono(0);

    pub const fn from_nanos(ns: u64) -> Self {
        Mono(ns)
    }

    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Current `CLOCK_MONOTONIC`.
    pub fn now() -> Self {
        Mono(clock_ns(libc::CLOCK_MONOTONIC))
    }

    /// `self - earlier`, or zero if `earlier` is later.
    pub fn since(self, earlier: Mono) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Mono {
    type Output = Mono;
    fn add(self, d: Duration) -> Mono {
        Mono(
            self.0
                .saturating_add(d.as_nanos().min(u64::MAX as u128) as u64),
        )
    }
}

impl fmt::Display for Mono {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:09}",
            self.0 / 1_000_000_000,
            self.0 % 1_000_000_000
        )
    }
}

/// Nanoseconds on `clock`.
pub fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-pointer; the clocks used here always exist on Linux.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Current `CLOCK_REALTIME` in nanoseconds (wire send time, logs).
pub fn realtime_ns() -> u64 {
    clock_ns(libc::CLOCK_REALTIME)
}

/// Converts a `CLOCK_REALTIME` kernel timestamp (e.g. `SO_TIMESTAMPNS`) to
/// [`Mono`] using the current offset between the two clocks.
pub fn realtime_to_mono(realtime_ns: u64) -> Mono {
    let mono = clock_ns(libc::CLOCK_MONOTONIC);
    let real = clock_ns(libc::CLOCK_REALTIME);
    let age = real.saturating_sub(realtime_ns);
    Mono(mono.saturating_sub(age))
}

/// A duration in (fractional) milliseconds, for reports and JSON.
pub fn as_ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Formats a duration as milliseconds with 3 decimals ("12.345 ms").
pub fn fmt_ms(d: Duration) -> String {
    format!("{:.3} ms", as_ms(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Mono::from_nanos(10);
        assert_eq!(t.since(Mono::from_nanos(20)), Duration::ZERO);
        assert_eq!(Mono::from_nanos(25).since(t), Duration::from_nanos(15));
        assert_eq!((t + Duration::from_nanos(5)).as_nanos(), 15);
        assert_eq!(
            (Mono::from_nanos(u64::MAX) + Duration::from_secs(1)).as_nanos(),
            u64::MAX
        );
    }

    #[test]
    fn realtime_conversion_is_close_to_now() {
        let now = Mono::now();
        let conv = realtime_to_mono(realtime_ns());
        assert!(conv.since(now) < Duration::from_millis(50));
        assert!(now.since(conv) < Duration::from_millis(50));
    }

    #[test]
    fn display() {
        assert_eq!(Mono::from_nanos(1_500_000_001).to_string(), "1.500000001");
        assert_eq!(fmt_ms(Duration::from_micros(12345)), "12.345 ms");
    }
}
