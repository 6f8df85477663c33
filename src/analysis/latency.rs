//! Latency analysis: percentiles, distributions and CDFs from merged HdrHistograms.
//!
//! Fourth stage of the data flow: the store hands over histograms merged per time bucket
//! (`Store::latency_histograms`), and this module turns each into the figures a report or a
//! chart shows. Percentiles always come from a merged histogram, never from averaging
//! percentiles. Values are microseconds in, milliseconds out.

use hdrhistogram::Histogram;
use serde::Serialize;

/// The figures of one latency histogram, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub min_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// Percentiles of a histogram of microseconds; `None` when it is empty.
pub fn percentiles(histogram: &Histogram<u64>) -> Option<Percentiles> {
    if histogram.is_empty() {
        return None;
    }
    // highest_equivalent: a percentile is reported as the top of its bucket (never below the truth).
    let at = |q: f64| ms(histogram.highest_equivalent(histogram.value_at_quantile(q)));
    Some(Percentiles {
        count: histogram.len(),
        min_ms: ms(histogram.min()),
        p50_ms: at(0.50),
        p90_ms: at(0.90),
        p99_ms: at(0.99),
        max_ms: ms(histogram.highest_equivalent(histogram.max())),
        mean_ms: histogram.mean() / 1000.0,
    })
}

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = 24 * HOUR_MS;

/// Time bucket for a chart over `span_ms`: fine enough to show the shape, coarse enough to
/// stay under about a thousand columns, and a whole hour or day from a few days on, so long
/// periods are read from rollups. A site's only rollups are its days: where a cluster's chart
/// would read hours, a site's reads days (an hour of one site would be every run's results).
pub fn chart_bucket_ms(span_ms: i64, site: bool) -> i64 {
    match span_ms {
        s if site && s > 4 * DAY_MS => DAY_MS,
        s if s <= 8 * HOUR_MS => MINUTE_MS,
        s if s <= 2 * DAY_MS => 5 * MINUTE_MS,
        s if s <= 4 * DAY_MS => 15 * MINUTE_MS,
        s if s <= 45 * DAY_MS => HOUR_MS,
        _ => DAY_MS,
    }
}

/// A chart bucket that fits the data: at least the spacing between the data's own buckets (runs
/// every 15 minutes in 5-minute buckets draw a comb) and wide enough that a bucket holds about
/// `wanted` samples (one sample a bucket draws points, not bands). One of the usual steps, never
/// below `bucket_ms`. `spacing_ms` is the median gap between non-empty buckets and
/// `samples` the median count in one.
pub fn fitted_bucket_ms(bucket_ms: i64, spacing_ms: i64, samples: u64, wanted: u64) -> i64 {
    const STEPS: [i64; 7] = [MINUTE_MS, 5 * MINUTE_MS, 15 * MINUTE_MS, HOUR_MS, 6 * HOUR_MS, DAY_MS, 7 * DAY_MS];
    let by_count = bucket_ms.saturating_mul(i64::try_from(wanted.div_ceil(samples.max(1))).unwrap_or(1));
    let needed = bucket_ms.max(spacing_ms).max(by_count);
    STEPS.into_iter().find(|&step| step >= needed).unwrap_or(7 * DAY_MS)
}

/// The median of some numbers (0 for none).
pub fn median(mut values: Vec<i64>) -> i64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

/// Edges of logarithmic latency bins in milliseconds: `per_decade` bins in each power of ten
/// from `lowest_ms` up to at least `highest_ms`.
pub fn log_bin_edges(lowest_ms: f64, highest_ms: f64, per_decade: u32) -> Vec<f64> {
    let per_decade = per_decade.max(1);
    let lowest = lowest_ms.max(1e-3);
    let highest = highest_ms.max(lowest * 10.0);
    let mut edges = vec![lowest];
    let mut i = 1;
    while *edges.last().unwrap_or(&highest) < highest && i <= 10_000 {
        edges.push(lowest * 10f64.powf(f64::from(i) / f64::from(per_decade)));
        i += 1;
    }
    edges
}

/// Counts of the histogram's values in each bin `[edges[i], edges[i+1])`; values below the
/// first edge go into the first bin, values above the last into the last.
pub fn bin_counts(histogram: &Histogram<u64>, edges_ms: &[f64]) -> Vec<u64> {
    let bins = edges_ms.len().saturating_sub(1);
    let mut counts = vec![0u64; bins];
    if bins == 0 {
        return counts;
    }
    for value in histogram.iter_recorded() {
        let v = ms(histogram.median_equivalent(value.value_iterated_to()));
        let bin = edges_ms.partition_point(|&edge| edge <= v).saturating_sub(1).min(bins - 1);
        counts[bin] += value.count_at_value();
    }
    counts
}

/// The empirical CDF: (latency in ms, share of checks at or below it), one point per distinct
/// recorded value (at most a few thousand for a 3-digit histogram).
pub fn cdf(histogram: &Histogram<u64>) -> Vec<(f64, f64)> {
    let total = histogram.len() as f64;
    if total == 0.0 {
        return Vec::new();
    }
    let mut seen = 0u64;
    histogram
        .iter_recorded()
        .map(|v| {
            seen += v.count_at_value();
            (ms(histogram.highest_equivalent(v.value_iterated_to())), seen as f64 / total)
        })
        .collect()
}

#[cfg(test)]
mod fitted_bucket_tests {
    use super::*;

    #[test]
    fn buckets_follow_the_data_spacing_and_hold_several_samples() {
        // A cluster probed every 15 minutes, 5-minute buckets: 15-minute buckets, no comb.
        assert_eq!(fitted_bucket_ms(5 * MINUTE_MS, 15 * MINUTE_MS, 300, 5), 15 * MINUTE_MS);
        // One site, one sample a bucket: buckets that hold five samples of it.
        assert_eq!(fitted_bucket_ms(5 * MINUTE_MS, 15 * MINUTE_MS, 1, 5), HOUR_MS);
        // Dense data keeps its bucket.
        assert_eq!(fitted_bucket_ms(MINUTE_MS, MINUTE_MS, 50, 5), MINUTE_MS);
        assert_eq!(median(vec![5, 1, 3]), 3);
        assert_eq!(median(Vec::new()), 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::histogram::{decode, encode, new_latency_histogram, record_micros};

    /// A skewed, long-tailed sample set like real latencies: mostly 20-40 ms, a tail to seconds.
    fn samples() -> Vec<u64> {
        (0..20_000u64)
            .map(|i| {
                let x = (i.wrapping_mul(2_654_435_761) % 10_000) as f64 / 10_000.0;
                (20_000.0 + 20_000.0 * x + if i % 97 == 0 { 2_000_000.0 * x } else { 0.0 }) as u64
            })
            .collect()
    }

    fn exact_quantile(sorted: &[u64], q: f64) -> f64 {
        sorted[((q * sorted.len() as f64).ceil() as usize).max(1) - 1] as f64 / 1000.0
    }

    #[test]
    fn merged_percentiles_match_the_raw_samples_within_the_precision() {
        let raw = samples();
        // Split over 40 "runs", serialized as the store does, then merged.
        let mut merged = new_latency_histogram();
        for chunk in raw.chunks(500) {
            let mut run = new_latency_histogram();
            for &v in chunk {
                record_micros(&mut run, v);
            }
            let stored = decode(&encode(&run)).unwrap();
            assert_eq!(stored, run, "serialization round-trips");
            merged.add(&stored).unwrap();
        }
        let mut sorted = raw.clone();
        sorted.sort_unstable();
        let p = percentiles(&merged).unwrap();
        assert_eq!(p.count, raw.len() as u64);
        for (q, got) in [(0.5, p.p50_ms), (0.9, p.p90_ms), (0.99, p.p99_ms), (1.0, p.max_ms)] {
            let exact = exact_quantile(&sorted, q);
            assert!((got - exact).abs() / exact <= 0.001, "q{q}: {got} ms vs {exact} ms");
        }
        let mean = raw.iter().sum::<u64>() as f64 / raw.len() as f64 / 1000.0;
        assert!((p.mean_ms - mean).abs() / mean <= 0.001);
        assert!(percentiles(&new_latency_histogram()).is_none());
    }

    #[test]
    fn bins_and_cdf_account_for_every_value() {
        let mut h = new_latency_histogram();
        for v in samples() {
            record_micros(&mut h, v);
        }
        let edges = log_bin_edges(0.1, 10_000.0, 10);
        assert_eq!(edges.len(), 51);
        assert!((edges[10] - 1.0).abs() < 1e-9 && (edges[50] - 10_000.0).abs() < 1e-6);
        let counts = bin_counts(&h, &edges);
        assert_eq!(counts.iter().sum::<u64>(), h.len());
        // 20-40 ms lands in the bins from 19.95 to 39.8 ms (and the one holding 40 ms).
        let busiest = counts.iter().enumerate().max_by_key(|(_, c)| **c).map(|(i, _)| edges[i]).unwrap();
        assert!((19.0..40.0).contains(&busiest), "{busiest}");

        let curve = cdf(&h);
        assert!(curve.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1));
        assert_eq!(curve.last().map(|p| p.1), Some(1.0));
        assert!(cdf(&new_latency_histogram()).is_empty());
    }

    #[test]
    fn chart_buckets_grow_with_the_period() {
        assert_eq!(chart_bucket_ms(HOUR_MS, false), MINUTE_MS);
        assert_eq!(chart_bucket_ms(DAY_MS, false), 5 * MINUTE_MS);
        assert_eq!(chart_bucket_ms(31 * DAY_MS, false), HOUR_MS);
        assert_eq!(chart_bucket_ms(365 * DAY_MS, false), DAY_MS);
        assert_eq!(chart_bucket_ms(DAY_MS, true), 5 * MINUTE_MS);
        assert_eq!(chart_bucket_ms(4 * DAY_MS, true), 15 * MINUTE_MS);
        assert_eq!(chart_bucket_ms(31 * DAY_MS, true), DAY_MS);
    }
}
