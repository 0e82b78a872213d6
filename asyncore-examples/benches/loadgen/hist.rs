//! A latency histogram: log-linear buckets, 32 per power of two (each about 3% wide).

use std::time::Duration;

/// Bits of mantissa kept per bucket: 2^5 = 32 buckets per power of two.
const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;

/// Counts of latencies in nanoseconds.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            counts: vec![0; bucket(u64::MAX) + 1],
            total: 0,
        }
    }
}

/// The bucket of `ns`: values below 64 have their own bucket, above that the top six
/// significant bits pick one.
fn bucket(ns: u64) -> usize {
    if ns < 2 * SUB {
        return ns as usize;
    }
    let log = 63 - ns.leading_zeros();
    let shift = log - SUB_BITS;
    ((shift as u64 + 1) * SUB + ((ns >> shift) - SUB)) as usize
}

/// The middle of bucket `b`, in nanoseconds.
fn middle(b: usize) -> u64 {
    let b = b as u64;
    if b < 2 * SUB {
        return b;
    }
    let shift = b / SUB - 1;
    let low = (b % SUB + SUB) << shift;
    low + (1u64 << shift) / 2
}

impl Histogram {
    /// Counts one latency.
    pub fn record(&mut self, latency: Duration) {
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.counts[bucket(ns)] += 1;
        self.total += 1;
    }

    /// How many latencies were counted.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// The latency below which a fraction `q` (0.0 to 1.0) of the counted ones fall, or
    /// zero when nothing was counted.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.total == 0 {
            return Duration::ZERO;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (b, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Duration::from_nanos(middle(b));
            }
        }
        Duration::from_nanos(middle(self.counts.len() - 1))
    }
}
