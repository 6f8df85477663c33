//! A run's results as columns: how one run's tens of thousands of results fit in a few bytes each.
//!
//! A run is stored as a *roster* and two blobs, rows sorted by (site key, check):
//!
//! - the roster: (site key, check) per row and each row's *base offset*, the time into the run
//!   its check usually starts (the sweep spreads sites over the interval at fixed offsets).
//!   Deflated; runs of an unchanged fleet share one stored roster, so it costs nothing per run.
//! - `outcomes`: outcome codes, run-length encoded (a healthy run of 20,000 results is 4 bytes).
//!   The availability analysis reads only this and the roster.
//! - `details`: everything else, deflated: attempts, HTTP status and which values are present
//!   (run-length encoded), each result's start as the difference from its base offset, and the
//!   timings, one column per phase, in byte planes.
//!
//! Timings are kept at the precision of the latency histograms: exact below 2,048 µs, above that
//! to 11 significant bits (relative error at most 1/2048, 0.05 %), so a stored timing never says
//! more than the histograms built from it could. Everything else is lossless. Texts (details)
//! and certificate expiry dates are not in here: they are rare or change rarely, and the store
//! keeps them beside the record.

use std::sync::Arc;

use miniz_oxide::inflate::TINFLStatus;

use crate::probe::{CheckKind, Outcome, Timings};

/// Why stored columns do not decode. Every error names the column: `roster`, `outcomes` or
/// `details`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ColumnsError {
    #[error("{column}: ends early")]
    EndsEarly { column: &'static str },
    #[error("{column}: a segment ends early")]
    SegmentEndsEarly { column: &'static str },
    #[error("{column}: {bytes} bytes left over")]
    LeftOver { column: &'static str, bytes: usize },
    #[error("{column}: cannot inflate: {status:?}")]
    Inflate { column: &'static str, status: TINFLStatus },
    #[error("{column}: a number longer than 64 bits")]
    NumberTooLong { column: &'static str },
    #[error("{column}: a run of {len} rows where {remain} remain")]
    RunTooLong { column: &'static str, len: usize, remain: usize },
    #[error("{column}: unknown {what} code {code}")]
    UnknownCode { column: &'static str, what: &'static str, code: u64 },
    #[error("{column}: {what} {value} out of range")]
    OutOfRange { column: &'static str, what: &'static str, value: u64 },
    #[error("{column}: {decoded} rows decoded, {expected} expected")]
    RowCount { column: &'static str, decoded: usize, expected: usize },
}

/// One result as the columns hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub site_key: i64,
    pub check: CheckKind,
    pub outcome: Outcome,
    /// Start of the result's (last) attempt minus the run's start, ms.
    pub offset_ms: i64,
    pub attempts: u8,
    pub http_status: Option<u16>,
    pub timings: Timings,
    /// Whether the result carried a certificate expiry (kept beside the record).
    pub has_cert: bool,
}

/// The encoded columns of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub count: usize,
    /// The encoded roster, or `None` when it is the `previous` one given to [`encode`] (runs
    /// over an unchanged fleet).
    pub roster: Option<Vec<u8>>,
    pub outcomes: Vec<u8>,
    pub details: Vec<u8>,
}

/// A decoded roster: who a run checked, and when each check usually starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roster {
    pub keys: Arc<Vec<(i64, CheckKind)>>,
    /// Base offset of each row, ms into the run.
    pub bases: Vec<i64>,
}

impl Roster {
    fn base(&self, key: (i64, CheckKind)) -> Option<i64> {
        self.keys.binary_search(&key).ok().map(|i| self.bases[i])
    }
}

/// How far a check may start from its base offset before the roster takes a new base. Past
/// this, a new roster is stored; within it, the difference costs a byte or so per result.
const BASE_TOLERANCE_MS: i64 = 2_000;

/// Deflate level: 6 packs timings ~10 % tighter than 1 for about twice the time, still well
/// under a millisecond per thousand results.
const DEFLATE_LEVEL: u8 = 6;
/// Largest inflated column accepted: far above any real run, it keeps a corrupt blob from
/// asking for unbounded memory.
const MAX_INFLATED: usize = 1 << 30;

const HAS_DNS: u8 = 1;
const HAS_CONNECT: u8 = 2;
const HAS_TLS: u8 = 4;
const HAS_FIRST_BYTE: u8 = 8;
const HAS_CERT: u8 = 16;

/// Encodes rows; they are sorted by (site key, check) first. Base offsets come from `previous`
/// (the roster of the prober's last run) where a check still starts near its old base, so that
/// an unchanged fleet keeps an unchanged roster. The caller has ruled out two rows with the
/// same key (the run writer refuses them).
pub fn encode(rows: &mut [Row], previous: Option<&Roster>) -> Block {
    rows.sort_unstable_by_key(|r| (r.site_key, r.check.code()));
    let bases: Vec<i64> = rows
        .iter()
        .map(|row| {
            previous
                .and_then(|roster| roster.base((row.site_key, row.check)))
                .filter(|base| (row.offset_ms - base).abs() <= BASE_TOLERANCE_MS)
                .unwrap_or(row.offset_ms)
        })
        .collect();
    let unchanged = previous.is_some_and(|roster| {
        roster.bases == bases
            && roster.keys.len() == rows.len()
            && roster.keys.iter().zip(rows.iter()).all(|(&(key, check), row)| key == row.site_key && check == row.check)
    });
    let roster = (!unchanged).then(|| {
        let mut keys = Vec::with_capacity(rows.len() * 4);
        let mut previous_key = 0i64;
        for (row, base) in rows.iter().zip(&bases) {
            put_varint(&mut keys, zigzag(row.site_key - previous_key));
            keys.push(row.check.code());
            put_varint(&mut keys, zigzag(*base));
            previous_key = row.site_key;
        }
        miniz_oxide::deflate::compress_to_vec(&keys, DEFLATE_LEVEL)
    });
    let mut outcomes = Vec::new();
    put_runs(&mut outcomes, rows.iter().map(|r| u64::from(r.outcome.code())));

    // Details in segments of rows, each deflated alone, so that a reader after a few sites
    // inflates a segment, not the run. The segment lengths come first.
    let segments: Vec<Vec<u8>> = rows
        .chunks(SEGMENT_ROWS)
        .zip(bases.chunks(SEGMENT_ROWS))
        .map(|(rows, bases)| miniz_oxide::deflate::compress_to_vec(&segment(rows, bases), DEFLATE_LEVEL))
        .collect();
    let mut details = Vec::with_capacity(segments.iter().map(Vec::len).sum::<usize>() + 4 * segments.len());
    for segment in &segments {
        put_varint(&mut details, segment.len() as u64);
    }
    for segment in segments {
        details.extend(segment);
    }
    Block { count: rows.len(), roster, outcomes, details }
}

/// Rows per segment of the details column.
const SEGMENT_ROWS: usize = 1024;

/// One segment of the details column, before deflating.
fn segment(rows: &[Row], bases: &[i64]) -> Vec<u8> {
    let mut details = Vec::with_capacity(rows.len() * 12);
    put_runs(&mut details, rows.iter().map(|r| u64::from(r.attempts)));
    put_runs(&mut details, rows.iter().map(|r| r.http_status.map_or(0, |s| u64::from(s) + 1)));
    put_runs(&mut details, rows.iter().map(|r| u64::from(mask(r))));
    let offsets: Vec<u64> = rows.iter().zip(bases).map(|(row, base)| zigzag(row.offset_ms - base)).collect();
    put_planes::<8>(&mut details, &offsets);
    // One column per phase, each split into byte planes: values of one phase look alike, and
    // a plane of high bytes is nearly constant, which is what deflate feeds on.
    for phase in 0..5 {
        let codes: Vec<u64> =
            rows.iter().filter_map(|row| phase_value(&row.timings, phase)).map(|v| u64::from(timing_code(v))).collect();
        put_planes::<2>(&mut details, &codes);
    }
    details
}

/// Phase `index` of the stored order: DNS, connect, TLS, first byte, total.
fn phase_value(t: &Timings, index: usize) -> Option<u32> {
    match index {
        0 => t.dns_us,
        1 => t.connect_us,
        2 => t.tls_us,
        3 => t.first_byte_us,
        _ => Some(t.total_us),
    }
}

fn mask(row: &Row) -> u8 {
    let t = &row.timings;
    let mut mask = 0;
    for (present, bit) in [
        (t.dns_us.is_some(), HAS_DNS),
        (t.connect_us.is_some(), HAS_CONNECT),
        (t.tls_us.is_some(), HAS_TLS),
        (t.first_byte_us.is_some(), HAS_FIRST_BYTE),
        (row.has_cert, HAS_CERT),
    ] {
        if present {
            mask |= bit;
        }
    }
    mask
}

/// Decodes a roster of `count` rows.
pub fn decode_roster(bytes: &[u8], count: usize) -> Result<Roster, ColumnsError> {
    let raw = inflate(bytes, "roster")?;
    let mut reader = Reader::new(&raw, "roster");
    let mut keys = Vec::with_capacity(count);
    let mut bases = Vec::with_capacity(count);
    let mut previous = 0i64;
    for _ in 0..count {
        let site_key = previous + unzigzag(reader.varint()?);
        let code = reader.byte()?;
        let check = CheckKind::from_code(code).ok_or(ColumnsError::UnknownCode {
            column: "roster",
            what: "check kind",
            code: u64::from(code),
        })?;
        keys.push((site_key, check));
        bases.push(unzigzag(reader.varint()?));
        previous = site_key;
    }
    reader.end()?;
    Ok(Roster { keys: Arc::new(keys), bases })
}

/// Outcome runs of a block: (outcome, how many rows in a row).
pub fn decode_outcomes(outcomes: &[u8], count: usize) -> Result<Vec<(Outcome, usize)>, ColumnsError> {
    let mut reader = Reader::new(outcomes, "outcomes");
    let runs = reader.runs(count)?;
    reader.end()?;
    runs.into_iter()
        .map(|(code, len)| {
            let outcome = u8::try_from(code).ok().and_then(Outcome::from_code).ok_or(ColumnsError::UnknownCode {
                column: "outcomes",
                what: "outcome",
                code,
            })?;
            Ok((outcome, len))
        })
        .collect()
}

/// Every row of a run, in row order, from its roster and its outcome and detail columns.
pub fn decode(roster: &Roster, outcomes: &[u8], details: &[u8]) -> Result<Vec<Row>, ColumnsError> {
    decode_rows(roster, outcomes, details, 0..roster.keys.len())
}

/// The rows of a run in `range` (of row indexes), inflating only the segments they are in.
pub fn decode_rows(
    roster: &Roster,
    outcomes: &[u8],
    details: &[u8],
    range: std::ops::Range<usize>,
) -> Result<Vec<Row>, ColumnsError> {
    let count = roster.keys.len();
    let range = range.start.min(count)..range.end.min(count);
    let outcome_list: Vec<Outcome> = decode_outcomes(outcomes, count)?
        .into_iter()
        .flat_map(|(outcome, len)| std::iter::repeat_n(outcome, len))
        .collect();
    let segments = count.div_ceil(SEGMENT_ROWS);
    let mut reader = Reader::new(details, "details");
    let lengths: Vec<usize> = (0..segments)
        .map(|_| reader.varint().map(|len| usize::try_from(len).unwrap_or(usize::MAX)))
        .collect::<Result<_, _>>()?;
    let mut at = reader.at;
    let mut rows = Vec::with_capacity(range.len());
    for (index, &len) in lengths.iter().enumerate() {
        let first = index * SEGMENT_ROWS;
        let rows_here = first..(first + SEGMENT_ROWS).min(count);
        let bytes =
            details.get(at..at.saturating_add(len)).ok_or(ColumnsError::SegmentEndsEarly { column: "details" })?;
        at += len;
        if rows_here.end <= range.start || range.end <= rows_here.start {
            continue;
        }
        let decoded = decode_segment(
            &roster.keys[rows_here.clone()],
            &roster.bases[rows_here.clone()],
            &outcome_list[rows_here.clone()],
            bytes,
        )?;
        let skip = range.start.saturating_sub(first);
        let take = range.end.min(rows_here.end) - first.max(range.start);
        rows.extend(decoded.into_iter().skip(skip).take(take));
    }
    if at != details.len() {
        return Err(ColumnsError::LeftOver { column: "details", bytes: details.len() - at });
    }
    Ok(rows)
}

/// One inflated segment's rows.
fn decode_segment(
    keys: &[(i64, CheckKind)],
    bases: &[i64],
    outcomes: &[Outcome],
    bytes: &[u8],
) -> Result<Vec<Row>, ColumnsError> {
    let count = keys.len();
    let raw = inflate(bytes, "details")?;
    let mut reader = Reader::new(&raw, "details");
    let attempts = expand(reader.runs(count)?);
    let statuses = expand(reader.runs(count)?);
    let masks: Vec<u8> = expand(reader.runs(count)?)
        .into_iter()
        .map(|mask| {
            u8::try_from(mask).map_err(|_| ColumnsError::OutOfRange {
                column: "details",
                what: "presence mask",
                value: mask,
            })
        })
        .collect::<Result<_, _>>()?;
    let offsets = reader.planes::<8>(count)?;
    let mut rows = Vec::with_capacity(count);
    for ((((&(site_key, check), &outcome), &attempts), (&status, &mask)), (&offset, &base)) in
        keys.iter().zip(outcomes).zip(&attempts).zip(statuses.iter().zip(&masks)).zip(offsets.iter().zip(bases))
    {
        let offset_ms = base + unzigzag(offset);
        let http_status = match status {
            0 => None,
            s => Some(u16::try_from(s - 1).map_err(|_| ColumnsError::OutOfRange {
                column: "details",
                what: "HTTP status",
                value: s - 1,
            })?),
        };
        let attempts = u8::try_from(attempts).map_err(|_| ColumnsError::OutOfRange {
            column: "details",
            what: "attempts",
            value: attempts,
        })?;
        rows.push(Row {
            site_key,
            check,
            outcome,
            offset_ms,
            attempts,
            http_status,
            timings: Timings::default(),
            has_cert: mask & HAS_CERT != 0,
        });
    }
    for (phase, bit) in [HAS_DNS, HAS_CONNECT, HAS_TLS, HAS_FIRST_BYTE].into_iter().enumerate() {
        let present = masks.iter().filter(|&&mask| mask & bit != 0).count();
        let mut codes = reader.timings(present)?.into_iter();
        for (row, &mask) in rows.iter_mut().zip(&masks) {
            if mask & bit != 0 {
                let value = codes.next();
                let t = &mut row.timings;
                match phase {
                    0 => t.dns_us = value,
                    1 => t.connect_us = value,
                    2 => t.tls_us = value,
                    _ => t.first_byte_us = value,
                }
            }
        }
    }
    for (row, total) in rows.iter_mut().zip(reader.timings(count)?) {
        row.timings.total_us = total;
    }
    reader.end()?;
    if rows.len() != count {
        return Err(ColumnsError::RowCount { column: "details", decoded: rows.len(), expected: count });
    }
    Ok(rows)
}

fn expand(runs: Vec<(u64, usize)>) -> Vec<u64> {
    runs.into_iter().flat_map(|(value, len)| std::iter::repeat_n(value, len)).collect()
}

fn inflate(data: &[u8], column: &'static str) -> Result<Vec<u8>, ColumnsError> {
    miniz_oxide::inflate::decompress_to_vec_with_limit(data, MAX_INFLATED)
        .map_err(|e| ColumnsError::Inflate { column, status: e.status })
}

/// A timing as stored: exact below 2,048 µs; above, 11 significant bits rounded to nearest.
pub fn timing_code(micros: u32) -> u32 {
    if micros < 2048 {
        return micros;
    }
    let mut shift = 31 - micros.leading_zeros() - 10;
    let mut mantissa = (u64::from(micros) + (1u64 << (shift - 1))) >> shift;
    if mantissa == 2048 {
        if shift + 11 < 32 {
            shift += 1;
            mantissa = 1024;
        } else {
            // Rounding up would leave u32; the largest code below does not.
            mantissa = 2047;
        }
    }
    (shift + 1) * 1024 + (mantissa as u32 - 1024)
}

/// The timing a stored code stands for.
pub fn timing_value(code: u32) -> Option<u32> {
    if code < 2048 {
        return Some(code);
    }
    let shift = code / 1024 - 1;
    let mantissa = 1024 + code % 1024;
    mantissa.checked_shl(shift).filter(|v| v >> shift == mantissa)
}

/// Rows that failed, from a run's outcome column: (row index, outcome).
pub fn failed_rows(outcomes: &[u8], count: usize) -> Result<Vec<(usize, Outcome)>, ColumnsError> {
    let mut failed = Vec::new();
    let mut at = 0;
    for (outcome, len) in decode_outcomes(outcomes, count)? {
        if !outcome.is_ok() {
            failed.extend((at..at + len).map(|i| (i, outcome)));
        }
        at += len;
    }
    Ok(failed)
}

/// The expiry a site's certificate had at `run`, from its history (sorted by first run).
pub fn cert_at(history: &[(i64, i64)], run: i64) -> Option<i64> {
    let after = history.partition_point(|&(from_run, _)| from_run <= run);
    after.checked_sub(1).map(|i| history[i].1)
}

/// A stable 64-bit FNV-1a hash of a roster's bytes, to find an equal stored roster.
pub fn roster_hash(bytes: &[u8]) -> i64 {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    hash as i64
}

/// Timings as the columns give them back (exact below 2,048 µs, 11 significant bits above).
#[cfg(test)]
pub(crate) fn as_stored(t: &Timings) -> Timings {
    let q = |v: u32| timing_value(timing_code(v)).expect("every code decodes");
    Timings {
        dns_us: t.dns_us.map(q),
        connect_us: t.connect_us.map(q),
        tls_us: t.tls_us.map(q),
        first_byte_us: t.first_byte_us.map(q),
        total_us: q(t.total_us),
    }
}

/// Writes values as (value, repeat count) runs.
fn put_runs(out: &mut Vec<u8>, values: impl Iterator<Item = u64>) {
    let mut current: Option<(u64, u64)> = None;
    for value in values {
        match &mut current {
            Some((v, n)) if *v == value => *n += 1,
            _ => {
                if let Some((v, n)) = current {
                    put_varint(out, v);
                    put_varint(out, n);
                }
                current = Some((value, 1));
            }
        }
    }
    if let Some((v, n)) = current {
        put_varint(out, v);
        put_varint(out, n);
    }
}

/// Writes values of `N` bytes as `N` planes: every value's lowest byte, then every next byte.
fn put_planes<const N: usize>(out: &mut Vec<u8>, values: &[u64]) {
    for plane in 0..N {
        out.extend(values.iter().map(|v| (v >> (8 * plane)) as u8));
    }
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

/// Reads a column; every error names the column.
struct Reader<'a> {
    data: &'a [u8],
    at: usize,
    column: &'static str,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8], column: &'static str) -> Self {
        Reader { data, at: 0, column }
    }

    fn byte(&mut self) -> Result<u8, ColumnsError> {
        let byte = *self.data.get(self.at).ok_or(ColumnsError::EndsEarly { column: self.column })?;
        self.at += 1;
        Ok(byte)
    }

    fn varint(&mut self) -> Result<u64, ColumnsError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ColumnsError::NumberTooLong { column: self.column })
    }

    /// `count` values written by [`put_planes`].
    fn planes<const N: usize>(&mut self, count: usize) -> Result<Vec<u64>, ColumnsError> {
        let bytes = count.checked_mul(N).filter(|&n| n <= self.data.len() - self.at);
        let Some(bytes) = bytes else { return Err(ColumnsError::EndsEarly { column: self.column }) };
        let data = &self.data[self.at..self.at + bytes];
        self.at += bytes;
        let mut values = vec![0u64; count];
        for plane in 0..N {
            for (value, &byte) in values.iter_mut().zip(&data[plane * count..(plane + 1) * count]) {
                *value |= u64::from(byte) << (8 * plane);
            }
        }
        Ok(values)
    }

    fn timings(&mut self, count: usize) -> Result<Vec<u32>, ColumnsError> {
        self.planes::<2>(count)?
            .into_iter()
            .map(|code| {
                u32::try_from(code).ok().and_then(timing_value).ok_or(ColumnsError::OutOfRange {
                    column: self.column,
                    what: "timing code",
                    value: code,
                })
            })
            .collect()
    }

    /// Runs covering exactly `count` rows.
    fn runs(&mut self, count: usize) -> Result<Vec<(u64, usize)>, ColumnsError> {
        let mut runs = Vec::new();
        let mut covered = 0usize;
        while covered < count {
            let value = self.varint()?;
            let len = usize::try_from(self.varint()?).unwrap_or(usize::MAX);
            if len == 0 || len > count - covered {
                return Err(ColumnsError::RunTooLong { column: self.column, len, remain: count - covered });
            }
            covered += len;
            runs.push((value, len));
        }
        Ok(runs)
    }

    fn end(&self) -> Result<(), ColumnsError> {
        if self.at == self.data.len() {
            Ok(())
        } else {
            Err(ColumnsError::LeftOver { column: self.column, bytes: self.data.len() - self.at })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Failure;
    use proptest::prelude::*;

    fn decode_block(block: &Block) -> Result<Vec<Row>, ColumnsError> {
        let roster = block.roster.as_ref().expect("a block encoded without a previous roster carries one");
        decode(&decode_roster(roster, block.count)?, &block.outcomes, &block.details)
    }

    #[test]
    fn a_range_of_rows_decodes_from_its_segments_alone() {
        let mut rows: Vec<Row> = (0..1_600).flat_map(|k| [http(k, k * 7, 20_000 + k as u32), dns(k, k * 7)]).collect();
        let block = encode(&mut rows, None);
        let roster = decode_roster(block.roster.as_ref().unwrap(), block.count).unwrap();
        let all = decode(&roster, &block.outcomes, &block.details).unwrap();
        assert_eq!(all.len(), 3_200);
        for range in [0..1, 1_000..2_100, 2_047..2_049, 3_000..3_200, 3_199..5_000] {
            let some = decode_rows(&roster, &block.outcomes, &block.details, range.clone()).unwrap();
            assert_eq!(some, all[range.start..range.end.min(3_200)], "{range:?}");
        }
    }

    #[test]
    fn a_roster_keeps_its_bases_while_checks_start_near_them() {
        let mut first = vec![http(1, 10_000, 900), dns(1, 10_000), http(2, 30_000, 900)];
        let block = encode(&mut first, None);
        let roster = decode_roster(block.roster.as_ref().unwrap(), 3).unwrap();
        assert_eq!(roster.bases, [10_000, 10_000, 30_000]);
        // The next run starts a little off: same roster bytes, the differences in the details.
        let mut second = vec![http(1, 10_700, 900), dns(1, 9_000), http(2, 31_999, 900)];
        let next = encode(&mut second, Some(&roster));
        assert_eq!(next.roster, None, "the previous roster holds");
        assert_eq!(decode(&roster, &next.outcomes, &next.details).unwrap(), second);
        // A site moved in the spread: a new base for it alone.
        let mut third = vec![http(1, 10_000, 900), dns(1, 10_000), http(2, 50_000, 900)];
        let moved = encode(&mut third, Some(&roster));
        assert_eq!(decode_roster(moved.roster.as_ref().unwrap(), 3).unwrap().bases, [10_000, 10_000, 50_000]);
        assert_eq!(decode_block(&moved).unwrap(), third);
    }

    fn http(site_key: i64, offset_ms: i64, first_byte_us: u32) -> Row {
        Row {
            site_key,
            check: CheckKind::Http,
            outcome: Outcome::Ok,
            offset_ms,
            attempts: 1,
            http_status: Some(200),
            timings: Timings {
                dns_us: Some(150),
                connect_us: Some(90),
                tls_us: Some(1_800),
                first_byte_us: Some(first_byte_us),
                total_us: first_byte_us + 40,
            },
            has_cert: true,
        }
    }

    fn dns(site_key: i64, offset_ms: i64) -> Row {
        Row {
            site_key,
            check: CheckKind::Dns,
            outcome: Outcome::Ok,
            offset_ms,
            attempts: 1,
            http_status: None,
            timings: Timings { total_us: 210, ..Timings::default() },
            has_cert: false,
        }
    }

    #[test]
    fn rows_round_trip_in_key_order() {
        let mut failed = http(3, 59_000, 0);
        failed.outcome = Outcome::Failed(Failure::ConnectRefused);
        failed.timings =
            Timings { dns_us: Some(100), connect_us: None, tls_us: None, first_byte_us: None, total_us: 120 };
        failed.http_status = None;
        failed.attempts = 2;
        failed.has_cert = false;
        let mut rows = vec![dns(7, 12), http(7, 10, 1_500), failed, dns(1, -5), http(1, 0, 900)];
        let block = encode(&mut rows, None);
        assert_eq!(block.count, 5);
        let keys: Vec<(i64, CheckKind)> = rows.iter().map(|r| (r.site_key, r.check)).collect();
        assert_eq!(
            keys,
            [
                (1, CheckKind::Http),
                (1, CheckKind::Dns),
                (3, CheckKind::Http),
                (7, CheckKind::Http),
                (7, CheckKind::Dns)
            ]
        );
        assert_eq!(decode_block(&block).unwrap(), rows);
        assert_eq!(*decode_roster(block.roster.as_ref().unwrap(), 5).unwrap().keys, keys);
        assert_eq!(
            decode_outcomes(&block.outcomes, 5).unwrap(),
            vec![(Outcome::Ok, 2), (Outcome::Failed(Failure::ConnectRefused), 1), (Outcome::Ok, 2)]
        );
    }

    #[test]
    fn a_healthy_run_of_twenty_thousand_results_has_four_bytes_of_outcomes() {
        let mut rows: Vec<Row> =
            (0..10_000).flat_map(|k| [http(k, k % 50_000, 30_000 + k as u32), dns(k, k % 50_000)]).collect();
        let block = encode(&mut rows, None);
        assert_eq!(block.outcomes.len(), 4, "code 0, then 20,000 in three bytes");

        assert_eq!(
            decode_block(&block).unwrap(),
            rows.iter().map(|r| Row { timings: as_stored(&r.timings), ..r.clone() }).collect::<Vec<_>>()
        );
    }

    #[test]
    fn timings_are_exact_below_2048_us_and_within_1_in_2048_above() {
        for v in (0..2048).chain([2048, 2049, 4095, 4096, 30_000, 1_000_000, 3_600_000_000, u32::MAX]) {
            let back = timing_value(timing_code(v)).unwrap();
            if v < 2048 {
                assert_eq!(back, v);
            } else {
                let error = (i64::from(back) - i64::from(v)).abs() as f64 / f64::from(v);
                assert!(error <= 1.0 / 2048.0, "{v} -> {back}");
            }
        }
        // Codes below 16,384 (two bytes) cover timings up to half a minute.
        assert!(timing_code(30_000_000) < 16_384);
    }

    #[test]
    fn corrupt_columns_are_errors_not_panics() {
        let mut rows = vec![http(1, 0, 900), dns(1, 1)];
        let block = encode(&mut rows, None);
        for cut in 0..block.details.len() {
            let broken = Block { details: block.details[..cut].to_vec(), ..block.clone() };
            assert!(decode_block(&broken).is_err());
        }
        let too_many = Block { count: 3, ..block.clone() };
        assert!(decode_block(&too_many).unwrap_err().to_string().contains("roster: ends early"));
        let bad_outcome = Block { outcomes: vec![200, 1, 0, 1], ..block.clone() };
        assert!(decode_block(&bad_outcome).is_err());
        assert!(timing_value(u32::MAX).is_none());
    }

    fn any_row() -> impl Strategy<Value = Row> {
        (
            0i64..50,
            proptest::sample::select(CheckKind::ALL.to_vec()),
            prop_oneof![Just(0u8), 1u8..12],
            -100_000i64..100_000,
            1u8..4,
            proptest::option::of(100u16..600),
            proptest::array::uniform4(proptest::option::of(0u32..2_000)),
            0u32..2_000,
            any::<bool>(),
        )
            .prop_map(
                |(site_key, check, code, offset_ms, attempts, http_status, phases, total_us, has_cert)| Row {
                    site_key,
                    check,
                    outcome: Outcome::from_code(code).unwrap_or(Outcome::Ok),
                    offset_ms,
                    attempts,
                    http_status,
                    timings: Timings {
                        dns_us: phases[0],
                        connect_us: phases[1],
                        tls_us: phases[2],
                        first_byte_us: phases[3],
                        total_us,
                    },
                    has_cert,
                },
            )
    }

    proptest! {
        #[test]
        fn any_rows_round_trip(rows in proptest::collection::vec(any_row(), 0..200)) {
            let mut unique: Vec<Row> = Vec::new();
            for row in rows {
                if !unique.iter().any(|r| r.site_key == row.site_key && r.check == row.check) {
                    unique.push(row);
                }
            }
            let block = encode(&mut unique, None);
            prop_assert_eq!(decode_block(&block).unwrap(), unique);
        }
    }
}
