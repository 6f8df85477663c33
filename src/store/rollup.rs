//! Latency rollups, the pure part: time buckets, merging histograms into them, and which stored
//! resolution answers which stretch of a period.
//!
//! Sits inside the store stage. The prober stores one histogram per run, cluster, check and
//! phase; the store merges them into hour and day histograms (and builds per-site day
//! histograms from raw results) once those hours and days are over. A query for any period is
//! answered by merging the coarsest stored histograms that fit the period exactly, falling back
//! to finer ones at its edges and wherever a rollup is still pending. Merging HdrHistograms is
//! exact, so a percentile from rollups equals the percentile from the runs themselves.

use std::collections::{BTreeMap, BTreeSet};

use super::{StoreError, StoreResult, TimedHistogram};
use hdrhistogram::Histogram;
use hdrhistogram::errors::{AdditionError, RecordError};

pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 86_400_000;

/// How long after its end a day's availability can still change: a run confirms an outage
/// that began up to `confirm_after` runs earlier, and an incident merges gaps of up to
/// `incident_gap`. A run therefore marks its own day and the day before as pending, and a
/// day's figures are computed once this much time has passed after its end.
pub const DAY_SETTLE_MS: i64 = DAY_MS;

/// The resolutions latency histograms are stored at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resolution {
    /// One histogram per run (per cluster), or the raw results (per site).
    Run,
    Hour,
    Day,
}

impl Resolution {
    /// Length of a bucket, for the rolled-up resolutions.
    pub fn bucket_ms(self) -> Option<i64> {
        match self {
            Resolution::Run => None,
            Resolution::Hour => Some(HOUR_MS),
            Resolution::Day => Some(DAY_MS),
        }
    }
}

/// Start of the bucket of length `len_ms` (aligned to the Unix epoch, so to UTC hours and days)
/// that holds `ms`.
pub fn bucket_start(ms: i64, len_ms: i64) -> i64 {
    ms.div_euclid(len_ms) * len_ms
}

/// Adds `from` into `into`. Both come from [`super::histogram::new_latency_histogram`] (or were
/// decoded from it), so the bucket layouts match and the sum is exact.
pub fn merge(into: &mut Histogram<u64>, from: &Histogram<u64>) -> Result<(), MergeError> {
    // A run's histogram holds a few hundred distinct values in 45,000 buckets: adding what was
    // recorded is far cheaper than `add`, which walks every bucket.
    if usize::try_from(from.len()).unwrap_or(usize::MAX) < from.distinct_values() / 8 {
        for value in from.iter_recorded() {
            into.record_n(value.value_iterated_to(), value.count_at_value()).map_err(MergeError::Record)?;
        }
        return Ok(());
    }
    into.add(from).map_err(MergeError::Add)
}

/// Two latency histograms that do not add up: their bucket layouts differ.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("cannot merge latency histograms: {0:?}")]
    Record(RecordError),
    #[error("cannot merge latency histograms: {0:?}")]
    Add(AdditionError),
}

/// Buckets of a rollup in progress: (bucket start, key) → merged histogram.
pub type Buckets<K> = BTreeMap<(i64, K), Histogram<u64>>;

/// Adds one histogram taken at `at_ms` to its bucket of `len_ms`. Callers stream histograms
/// through this one at a time, so a rollup holds one histogram per bucket and key, not all.
pub fn add_to_bucket<K: Ord>(
    buckets: &mut Buckets<K>,
    len_ms: i64,
    at_ms: i64,
    key: K,
    histogram: Histogram<u64>,
) -> Result<(), MergeError> {
    match buckets.entry((bucket_start(at_ms, len_ms), key)) {
        std::collections::btree_map::Entry::Occupied(mut sum) => merge(sum.get_mut(), &histogram),
        std::collections::btree_map::Entry::Vacant(slot) => {
            slot.insert(histogram);
            Ok(())
        }
    }
}

/// Merges timed histograms into buckets of `len_ms`, keyed by (bucket start, key). This is the
/// rollup itself: hour histograms from per-run ones, day histograms from hour ones.
pub fn roll_up<K: Ord>(
    items: impl IntoIterator<Item = (i64, K, Histogram<u64>)>,
    len_ms: i64,
) -> Result<Buckets<K>, MergeError> {
    let mut buckets = Buckets::new();
    for (at_ms, key, histogram) in items {
        add_to_bucket(&mut buckets, len_ms, at_ms, key, histogram)?;
    }
    Ok(buckets)
}

/// Sites whose day histograms one probe run builds: enough to finish a day's pass within a
/// third of the next day, so each run reads about three runs' worth of results.
pub fn site_budget(sites: usize, interval_ms: i64) -> usize {
    let runs_per_day = usize::try_from(DAY_MS / interval_ms.max(1)).unwrap_or(1).max(1);
    (3 * sites).div_ceil(runs_per_day).max(20)
}

/// Rollups that are not (yet) up to date: buckets that received a run since they were last
/// rolled up, including the current, unfinished hour and day. Queries read finer data there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pending {
    /// Hour starts whose hour histograms are missing or stale.
    pub hours: BTreeSet<i64>,
    /// Day starts whose cluster day histograms are missing or stale.
    pub days: BTreeSet<i64>,
    /// Day starts whose per-site day histograms are missing, stale or half built.
    pub site_days: BTreeSet<i64>,
}

/// One stretch of a query, read at one resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    pub resolution: Resolution,
    pub start_ms: i64,
    pub end_ms: i64,
}

/// How to read [from, to) for a cluster (`site == false`) or a site: whole UTC days from day
/// histograms, whole hours from hour histograms (clusters only), the rest from runs; a pending
/// rollup is read at the next finer resolution. Adjacent pieces of one resolution are joined.
pub fn cover(from_ms: i64, to_ms: i64, pending: &Pending, site: bool) -> Vec<Piece> {
    let mut pieces: Vec<Piece> = Vec::new();
    let mut push = |resolution, start_ms, end_ms| {
        if start_ms >= end_ms {
            return;
        }
        if let Some(last) = pieces.last_mut()
            && last.resolution == resolution
            && last.end_ms == start_ms
        {
            last.end_ms = end_ms;
            return;
        }
        pieces.push(Piece { resolution, start_ms, end_ms });
    };
    // Hours (or runs) for [a, b), a stretch without whole usable days.
    let fine = |a: i64, b: i64, push: &mut dyn FnMut(Resolution, i64, i64)| {
        if site {
            push(Resolution::Run, a, b);
            return;
        }
        let mut at = a;
        while at < b {
            let hour = bucket_start(at, HOUR_MS);
            let hour_end = hour + HOUR_MS;
            if hour == at && hour_end <= b && !pending.hours.contains(&hour) {
                push(Resolution::Hour, at, hour_end);
            } else {
                push(Resolution::Run, at, hour_end.min(b));
            }
            at = hour_end.min(b);
        }
    };
    let mut at = from_ms;
    while at < to_ms {
        let day = bucket_start(at, DAY_MS);
        let day_end = day + DAY_MS;
        let stale = if site { pending.site_days.contains(&day) } else { pending.days.contains(&day) };
        if day == at && day_end <= to_ms && !stale {
            push(Resolution::Day, at, day_end);
        } else {
            fine(at, day_end.min(to_ms), &mut push);
        }
        at = day_end.min(to_ms);
    }
    pieces
}

/// Reads one stored piece's histograms, handing each to the callback.
pub type PieceReader<'a> = dyn FnMut(Piece, &mut dyn FnMut(Histogram<u64>) -> StoreResult<()>) -> StoreResult<()> + 'a;

/// Each output bucket of `query` from `from_ms` to `to_ms`, merged from the stored pieces that
/// [`cover`] chooses for it; `read` reads one piece's histograms (the backend's part), `corrupt`
/// names a histogram that will not merge. Empty buckets are left out. `runs_only` reads every
/// bucket from the runs themselves (a query of some vantages: rollups merge all of them).
pub fn merged_buckets(
    (from_ms, to_ms, bucket_ms): (i64, i64, Option<i64>),
    pending: &Pending,
    (site, runs_only): (bool, bool),
    read: &mut PieceReader,
    corrupt: &dyn Fn(String) -> StoreError,
    each: &mut dyn FnMut(TimedHistogram) -> StoreResult<()>,
) -> StoreResult<()> {
    for (start_ms, end_ms) in output_buckets(from_ms, to_ms, bucket_ms) {
        let mut sum: Option<Histogram<u64>> = None;
        let pieces = if runs_only {
            vec![Piece { resolution: Resolution::Run, start_ms, end_ms }]
        } else {
            cover(start_ms, end_ms, pending, site)
        };
        for piece in pieces {
            read(piece, &mut |histogram| match &mut sum {
                Some(sum) => merge(sum, &histogram).map_err(|e| corrupt(e.to_string())),
                None => {
                    sum = Some(histogram);
                    Ok(())
                }
            })?;
        }
        if let Some(histogram) = sum.filter(|h| !h.is_empty()) {
            each(TimedHistogram { start_ms, end_ms, histogram })?;
        }
    }
    Ok(())
}

/// Output buckets of a query: [from, to) cut at multiples of `bucket_ms` (epoch-aligned), or
/// the whole period as one.
pub fn output_buckets(from_ms: i64, to_ms: i64, bucket_ms: Option<i64>) -> Vec<(i64, i64)> {
    let Some(len) = bucket_ms.filter(|&len| len > 0) else {
        return if from_ms < to_ms { vec![(from_ms, to_ms)] } else { Vec::new() };
    };
    let mut buckets = Vec::new();
    let mut at = from_ms;
    while at < to_ms {
        let end = (bucket_start(at, len) + len).min(to_ms);
        buckets.push((at, end));
        at = end;
    }
    buckets
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::histogram::{new_latency_histogram, record_micros};

    const T0: i64 = 1_790_000_000_000 / DAY_MS * DAY_MS; // a UTC midnight in 2026

    fn piece(resolution: Resolution, start_ms: i64, end_ms: i64) -> Piece {
        Piece { resolution, start_ms, end_ms }
    }

    #[test]
    fn cover_uses_days_then_hours_then_runs() {
        let none = Pending::default();
        // 22:30 on day 0 to 01:15 on day 3: a partial hour, an hour, two days, an hour, a quarter.
        let from = T0 + 22 * HOUR_MS + HOUR_MS / 2;
        let to = T0 + 3 * DAY_MS + HOUR_MS + HOUR_MS / 4;
        assert_eq!(
            cover(from, to, &none, false),
            vec![
                piece(Resolution::Run, from, T0 + 23 * HOUR_MS),
                piece(Resolution::Hour, T0 + 23 * HOUR_MS, T0 + DAY_MS),
                piece(Resolution::Day, T0 + DAY_MS, T0 + 3 * DAY_MS),
                piece(Resolution::Hour, T0 + 3 * DAY_MS, T0 + 3 * DAY_MS + HOUR_MS),
                piece(Resolution::Run, T0 + 3 * DAY_MS + HOUR_MS, to),
            ]
        );
        // Sites have no hour histograms: runs around the whole days.
        assert_eq!(
            cover(from, to, &none, true),
            vec![
                piece(Resolution::Run, from, T0 + DAY_MS),
                piece(Resolution::Day, T0 + DAY_MS, T0 + 3 * DAY_MS),
                piece(Resolution::Run, T0 + 3 * DAY_MS, to),
            ]
        );
    }

    #[test]
    fn pending_rollups_are_read_finer() {
        let pending =
            Pending { hours: [T0 + DAY_MS + 5 * HOUR_MS].into(), days: [T0 + DAY_MS].into(), site_days: [T0].into() };
        let to = T0 + 2 * DAY_MS;
        assert_eq!(
            cover(T0, to, &pending, false),
            vec![
                piece(Resolution::Day, T0, T0 + DAY_MS),
                piece(Resolution::Hour, T0 + DAY_MS, T0 + DAY_MS + 5 * HOUR_MS),
                piece(Resolution::Run, T0 + DAY_MS + 5 * HOUR_MS, T0 + DAY_MS + 6 * HOUR_MS),
                piece(Resolution::Hour, T0 + DAY_MS + 6 * HOUR_MS, to),
            ]
        );
        assert_eq!(
            cover(T0, to, &pending, true),
            vec![piece(Resolution::Run, T0, T0 + DAY_MS), piece(Resolution::Day, T0 + DAY_MS, to)]
        );
        assert!(cover(to, to, &pending, false).is_empty());
    }

    #[test]
    fn a_site_pass_finishes_within_a_third_of_a_day() {
        assert_eq!(site_budget(10_000, 60_000), 21);
        assert_eq!(site_budget(100, 60_000), 20);
        assert_eq!(site_budget(1_000_000, 60_000), 2_084);
        assert_eq!(site_budget(10, 0), 20);
    }

    #[test]
    fn output_buckets_are_epoch_aligned() {
        let from = T0 + 90 * 60_000;
        assert_eq!(
            output_buckets(from, T0 + 3 * HOUR_MS, Some(HOUR_MS)),
            vec![(from, T0 + 2 * HOUR_MS), (T0 + 2 * HOUR_MS, T0 + 3 * HOUR_MS)]
        );
        assert_eq!(output_buckets(from, T0 + 3 * HOUR_MS, None), vec![(from, T0 + 3 * HOUR_MS)]);
        assert!(output_buckets(from, from, Some(HOUR_MS)).is_empty());
    }

    #[test]
    fn rolling_up_then_merging_equals_merging_directly() {
        // Runs every 7 minutes over two days, each with its own spread of latencies.
        let mut runs = Vec::new();
        for i in 0..(2 * 24 * 60 / 7) {
            let mut h = new_latency_histogram();
            for j in 0..50u64 {
                record_micros(&mut h, 1_000 + (i as u64 * 7_919 + j * 104_729) % 400_000);
            }
            runs.push((T0 + i * 7 * 60_000, h));
        }
        let hours = roll_up(runs.iter().map(|(t, h)| (*t, "web1", h.clone())), HOUR_MS).unwrap();
        assert_eq!(hours.len(), 48);
        let days = roll_up(hours.iter().map(|((t, k), h)| (*t, *k, h.clone())), DAY_MS).unwrap();
        assert_eq!(days.len(), 2);

        let mut direct = new_latency_histogram();
        for (_, h) in &runs {
            merge(&mut direct, h).unwrap();
        }
        let mut from_days = new_latency_histogram();
        for h in days.values() {
            merge(&mut from_days, h).unwrap();
        }
        assert_eq!(from_days, direct);
        assert_eq!(from_days.len(), runs.len() as u64 * 50);
        // Rolling up is idempotent: rolling up the days again changes nothing.
        let again = roll_up(days.iter().map(|((t, k), h)| (*t, *k, h.clone())), DAY_MS).unwrap();
        assert_eq!(again, days);
    }
}
