//! Latency histograms: how they are created, serialized and merged.
//!
//! Values are microseconds from 1 µs to one hour with three significant digits, so merging
//! histograms of any runs gives percentiles within 0.1 % of the raw samples, and a report never
//! averages percentiles.

use hdrhistogram::Histogram;

use crate::probe::{CheckKind, CheckResult, Phase};
use hdrhistogram::serialization::{DeserializeError, Deserializer, Serializer, V2DeflateSerializer};

/// Highest latency kept: one hour, in microseconds. Larger values are clamped.
pub const MAX_MICROS: u64 = 3_600_000_000;
const SIGNIFICANT_DIGITS: u8 = 3;

/// A new empty latency histogram.
pub fn new_latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, SIGNIFICANT_DIGITS).expect("constant bounds are valid")
}

/// Records a latency, clamped into the histogram's range.
pub fn record_micros(histogram: &mut Histogram<u64>, micros: u64) {
    histogram.saturating_record(micros.clamp(1, MAX_MICROS));
}

/// The latencies of one run, per cluster, check and phase: what a run stores beside its results.
/// Only successful checks are recorded, so a failing site does not distort the percentiles.
#[derive(Debug, Default)]
pub struct RunLatencies {
    by_key: std::collections::HashMap<(crate::fleet::ClusterIdx, CheckKind, Phase), Histogram<u64>>,
}

impl RunLatencies {
    /// Records every timed phase of a successful result of a site on `cluster`.
    pub fn record(&mut self, cluster: crate::fleet::ClusterIdx, result: &CheckResult) {
        if !result.outcome.is_ok() {
            return;
        }
        for phase in Phase::ALL {
            if let Some(us) = result.timings.get(phase) {
                let histogram = self.by_key.entry((cluster, result.check, phase)).or_insert_with(new_latency_histogram);
                record_micros(histogram, u64::from(us));
            }
        }
    }

    /// Each (cluster, check, phase) and its histogram, for figures of the run itself.
    pub fn iter(&self) -> impl Iterator<Item = (&(crate::fleet::ClusterIdx, CheckKind, Phase), &Histogram<u64>)> {
        self.by_key.iter()
    }

    /// The records to store, clusters named as in the fleet.
    pub fn into_records(self, fleet: &crate::fleet::Fleet) -> Vec<super::HistogramRecord> {
        self.by_key
            .into_iter()
            .map(|((cluster, check, phase), histogram)| super::HistogramRecord {
                cluster: fleet.clusters[cluster].name.clone(),
                check,
                phase,
                histogram,
            })
            .collect()
    }
}

/// Serializes in the HdrHistogram V2 deflate format (readable by other HdrHistogram libraries;
/// a third to a half of plain V2). Plain V2, as older stores hold, decodes too.
pub fn encode(histogram: &Histogram<u64>) -> Vec<u8> {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new().serialize(histogram, &mut bytes).expect("writing into a Vec cannot fail");
    bytes
}

/// A stored histogram that does not deserialize.
#[derive(Debug, thiserror::Error)]
#[error("bad histogram: {0:?}")]
pub struct DecodeError(DeserializeError);

pub fn decode(bytes: &[u8]) -> Result<Histogram<u64>, DecodeError> {
    Deserializer::new().deserialize(&mut std::io::Cursor::new(bytes)).map_err(DecodeError)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_merge() {
        let mut a = new_latency_histogram();
        let mut b = new_latency_histogram();
        let mut raw = Vec::new();
        for v in 1..=1000u64 {
            record_micros(&mut a, v * 100);
            record_micros(&mut b, v * 1000);
            raw.extend([v * 100, v * 1000]);
        }
        raw.sort_unstable();
        let decoded = decode(&encode(&a)).unwrap();
        assert_eq!(decoded, a);
        let mut merged = decoded;
        merged.add(&b).unwrap();
        assert_eq!(merged.len(), 2000);
        // Percentiles of the merged histogram match the raw samples within the precision.
        for q in [0.5, 0.9, 0.99] {
            let exact = raw[(q * raw.len() as f64).ceil() as usize - 1] as f64;
            let merged_value = merged.value_at_quantile(q) as f64;
            assert!((merged_value - exact).abs() / exact <= 0.001, "q{q}: {merged_value} vs {exact}");
        }
        record_micros(&mut merged, u64::MAX);
        assert!(merged.max() <= MAX_MICROS + MAX_MICROS / 1000);
    }
}
