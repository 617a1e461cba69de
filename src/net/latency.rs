//! Latency histograms: each shard observes into plain cells on its own thread
//! ([`Histogram`]), publishes them on its tick into relaxed atomics
//! ([`HistogramFigures`]), and `/metrics` writes every shard's as one Prometheus
//! histogram family with a `shard` label ([`ShardHistograms`]).
//!
//! The buckets are fixed, from 50 µs to 5 s, so an observation is a short search and
//! two cell increments, and every shard's figures add up in a query.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// The buckets' upper bounds in seconds; a last bucket takes everything slower.
pub const BOUNDS: [f64; 16] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0,
];

/// The bounds in nanoseconds, to place an observation without floating point.
const BOUNDS_NS: [u64; BOUNDS.len()] = {
    let mut ns = [0; BOUNDS.len()];
    let mut i = 0;
    while i < BOUNDS.len() {
        ns[i] = (BOUNDS[i] * 1e9) as u64;
        i += 1;
    }
    ns
};

const BUCKETS: usize = BOUNDS.len() + 1;

/// One shard's observations of one latency, counted on its thread: cells, never shared.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Observations per bucket (not cumulative), the last one past every bound.
    counts: [Cell<u64>; BUCKETS],
    sum_ns: Cell<u64>,
}

impl Histogram {
    /// Counts one latency.
    pub fn observe(&self, latency: Duration) {
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        let bucket = BOUNDS_NS.partition_point(|&bound| bound < ns);
        let count = &self.counts[bucket];
        count.set(count.get() + 1);
        self.sum_ns.set(self.sum_ns.get().saturating_add(ns));
    }
}

/// A histogram as its shard last published it, readable from any thread.
#[derive(Debug, Default)]
pub struct HistogramFigures {
    counts: [AtomicU64; BUCKETS],
    sum_ns: AtomicU64,
}

impl HistogramFigures {
    /// Stores `histogram`'s figures (only the owning shard calls this).
    pub fn publish(&self, histogram: &Histogram) {
        for (a, c) in self.counts.iter().zip(&histogram.counts) {
            a.store(c.get(), Ordering::Relaxed);
        }
        self.sum_ns.store(histogram.sum_ns.get(), Ordering::Relaxed);
    }

    fn snapshot(&self) -> Snapshot {
        let buckets: Vec<(f64, u64)> = BOUNDS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(&self.counts)
            .map(|(bound, a)| (bound, a.load(Ordering::Relaxed)))
            .collect();
        Snapshot {
            count: buckets.iter().map(|(_, n)| n).sum(),
            sum: self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9,
            buckets,
        }
    }
}

#[derive(Debug)]
struct Snapshot {
    sum: f64,
    count: u64,
    /// Each bucket's own count, as the encoder wants them (it accumulates).
    buckets: Vec<(f64, u64)>,
}

/// Every shard's histogram of one latency, as one metric family labelled by `shard`.
#[derive(Debug)]
pub struct ShardHistograms(Vec<(String, Snapshot)>);

impl ShardHistograms {
    pub fn new<'a>(shards: impl Iterator<Item = &'a HistogramFigures>) -> Self {
        ShardHistograms(
            shards
                .enumerate()
                .map(|(i, figures)| (i.to_string(), figures.snapshot()))
                .collect(),
        )
    }
}

impl TypedMetric for ShardHistograms {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for ShardHistograms {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for (shard, s) in &self.0 {
            let labels = [("shard", shard.as_str())];
            encoder
                .encode_family(&labels)?
                .encode_histogram::<NoLabelSet>(s.sum, s.count, &s.buckets, None)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_observation_lands_in_the_first_bucket_that_holds_it() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(50)); // on the bound: that bucket
        h.observe(Duration::from_micros(51));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(60)); // past every bound
        let figures = HistogramFigures::default();
        figures.publish(&h);
        let s = figures.snapshot();
        let counts: Vec<u64> = s.buckets.iter().map(|(_, n)| *n).collect();
        let mut expected = vec![0; BUCKETS];
        expected[0] = 1;
        expected[1] = 1;
        expected[6] = 1; // 5 ms
        expected[BUCKETS - 1] = 1;
        assert_eq!(counts, expected);
        assert_eq!(s.count, 4);
        assert!((s.sum - 60.003101).abs() < 1e-9, "{}", s.sum);
    }
}
