//! A run's results as columns: how one run's tens of thousands of results fit in a few bytes each.
//!
//! A run is stored as one record of three blobs, rows sorted by (site key, check):
//!
//! - `keys`: the run's *roster*, (site key, check) per row: site-key deltas and check codes,
//!   deflated. Runs of an unchanged fleet have byte-identical rosters, so a reader decodes a
//!   roster once and recognises it in later runs by its bytes.
//! - `outcomes`: outcome codes, run-length encoded (a healthy run of 20,000 results is 4 bytes).
//!   The availability analysis reads only this and the roster.
//! - `details`: everything else, deflated: attempts, HTTP status and which values are present
//!   (run-length encoded), each result's start as an offset from the run's start, and the
//!   timings, one column per phase.
//!
//! Timings are kept at the precision of the latency histograms: exact below 2,048 µs, above that
//! to 11 significant bits (relative error at most 1/2048, 0.05 %), so a stored timing never says more
//! than the histograms built from it could. Everything else is lossless. Texts (details) and
//! certificate expiry dates are not in here: they are rare or change rarely, and the store keeps
//! them beside the record.

use crate::probe::{CheckKind, Outcome, Timings};

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
    pub keys: Vec<u8>,
    pub outcomes: Vec<u8>,
    pub details: Vec<u8>,
}

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

/// Encodes rows; they are sorted by (site key, check) first. Two rows with the same key are an
/// error the caller has already ruled out (the run writer refuses them).
pub fn encode(rows: &mut [Row]) -> Block {
    rows.sort_unstable_by_key(|r| (r.site_key, r.check.code()));
    let mut keys = Vec::with_capacity(rows.len() * 2);
    let mut previous = 0i64;
    for row in rows.iter() {
        put_varint(&mut keys, zigzag(row.site_key - previous));
        keys.push(row.check.code());
        previous = row.site_key;
    }
    let mut outcomes = Vec::new();
    put_runs(&mut outcomes, rows.iter().map(|r| u64::from(r.outcome.code())));

    let mut details = Vec::with_capacity(rows.len() * 8);
    put_runs(&mut details, rows.iter().map(|r| u64::from(r.attempts)));
    put_runs(&mut details, rows.iter().map(|r| r.http_status.map_or(0, |s| u64::from(s) + 1)));
    put_runs(&mut details, rows.iter().map(|r| u64::from(mask(r))));
    // Checks of one site start together, so only a site's first offset is spelled out; its
    // other checks say how much later they started.
    let mut site_start = (i64::MIN, 0i64);
    let offsets: Vec<u64> = rows
        .iter()
        .map(|row| {
            if row.site_key == site_start.0 {
                zigzag(row.offset_ms - site_start.1)
            } else {
                site_start = (row.site_key, row.offset_ms);
                zigzag(row.offset_ms)
            }
        })
        .collect();
    put_planes::<8>(&mut details, &offsets);
    // One column per phase, each split into byte planes: values of one phase look alike, and
    // a plane of high bytes is nearly constant, which is what deflate feeds on.
    for phase in 0..5 {
        let codes: Vec<u64> =
            rows.iter().filter_map(|row| phase_value(&row.timings, phase)).map(|v| u64::from(timing_code(v))).collect();
        put_planes::<2>(&mut details, &codes);
    }
    Block {
        count: rows.len(),
        keys: miniz_oxide::deflate::compress_to_vec(&keys, DEFLATE_LEVEL),
        outcomes,
        details: miniz_oxide::deflate::compress_to_vec(&details, DEFLATE_LEVEL),
    }
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

/// The roster of a block: (site key, check) per row, in row order.
pub fn decode_keys(keys: &[u8], count: usize) -> Result<Vec<(i64, CheckKind)>, String> {
    let raw = inflate(keys, "keys")?;
    let mut reader = Reader::new(&raw, "keys");
    let mut roster = Vec::with_capacity(count);
    let mut previous = 0i64;
    for _ in 0..count {
        let site_key = previous + unzigzag(reader.varint()?);
        let code = reader.byte()?;
        let check = CheckKind::from_code(code).ok_or_else(|| format!("keys: unknown check kind code {code}"))?;
        roster.push((site_key, check));
        previous = site_key;
    }
    reader.end()?;
    Ok(roster)
}

/// Outcome runs of a block: (outcome, how many rows in a row).
pub fn decode_outcomes(outcomes: &[u8], count: usize) -> Result<Vec<(Outcome, usize)>, String> {
    let mut reader = Reader::new(outcomes, "outcomes");
    let runs = reader.runs(count)?;
    reader.end()?;
    runs.into_iter()
        .map(|(code, len)| {
            let outcome = u8::try_from(code)
                .ok()
                .and_then(Outcome::from_code)
                .ok_or_else(|| format!("outcomes: unknown outcome code {code}"))?;
            Ok((outcome, len))
        })
        .collect()
}

/// Every row of a block, in row order.
pub fn decode(block: &Block) -> Result<Vec<Row>, String> {
    let roster = decode_keys(&block.keys, block.count)?;
    let outcome_runs = decode_outcomes(&block.outcomes, block.count)?;
    let raw = inflate(&block.details, "details")?;
    let mut reader = Reader::new(&raw, "details");
    let attempts = expand(reader.runs(block.count)?);
    let statuses = expand(reader.runs(block.count)?);
    let masks: Vec<u8> = expand(reader.runs(block.count)?)
        .into_iter()
        .map(|mask| u8::try_from(mask).map_err(|_| format!("details: presence mask {mask} out of range")))
        .collect::<Result<_, _>>()?;
    let outcomes = outcome_runs.into_iter().flat_map(|(outcome, len)| std::iter::repeat_n(outcome, len));
    let offsets = reader.planes::<8>(block.count)?;
    let mut rows = Vec::with_capacity(block.count);
    let mut site_start = (i64::MIN, 0i64);
    for ((((&(site_key, check), outcome), &attempts), (&status, &mask)), &offset) in
        roster.iter().zip(outcomes).zip(&attempts).zip(statuses.iter().zip(&masks)).zip(&offsets)
    {
        let offset = unzigzag(offset);
        let offset_ms = if site_key == site_start.0 {
            site_start.1 + offset
        } else {
            site_start = (site_key, offset);
            offset
        };
        let http_status = match status {
            0 => None,
            s => Some(u16::try_from(s - 1).map_err(|_| format!("details: HTTP status {} out of range", s - 1))?),
        };
        let attempts = u8::try_from(attempts).map_err(|_| format!("details: {attempts} attempts out of range"))?;
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
    for (row, total) in rows.iter_mut().zip(reader.timings(block.count)?) {
        row.timings.total_us = total;
    }
    reader.end()?;
    if rows.len() != block.count {
        return Err(format!("details: {} rows decoded, {} expected", rows.len(), block.count));
    }
    Ok(rows)
}

fn expand(runs: Vec<(u64, usize)>) -> Vec<u64> {
    runs.into_iter().flat_map(|(value, len)| std::iter::repeat_n(value, len)).collect()
}

fn inflate(data: &[u8], column: &str) -> Result<Vec<u8>, String> {
    miniz_oxide::inflate::decompress_to_vec_with_limit(data, MAX_INFLATED)
        .map_err(|e| format!("{column}: cannot inflate: {:?}", e.status))
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

    fn byte(&mut self) -> Result<u8, String> {
        let byte = *self.data.get(self.at).ok_or_else(|| format!("{}: ends early", self.column))?;
        self.at += 1;
        Ok(byte)
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(format!("{}: a number longer than 64 bits", self.column))
    }

    /// `count` values written by [`put_planes`].
    fn planes<const N: usize>(&mut self, count: usize) -> Result<Vec<u64>, String> {
        let bytes = count.checked_mul(N).filter(|&n| n <= self.data.len() - self.at);
        let Some(bytes) = bytes else { return Err(format!("{}: ends early", self.column)) };
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

    fn timings(&mut self, count: usize) -> Result<Vec<u32>, String> {
        self.planes::<2>(count)?
            .into_iter()
            .map(|code| {
                u32::try_from(code)
                    .ok()
                    .and_then(timing_value)
                    .ok_or_else(|| format!("{}: timing code {code} out of range", self.column))
            })
            .collect()
    }

    /// Runs covering exactly `count` rows.
    fn runs(&mut self, count: usize) -> Result<Vec<(u64, usize)>, String> {
        let mut runs = Vec::new();
        let mut covered = 0usize;
        while covered < count {
            let value = self.varint()?;
            let len = usize::try_from(self.varint()?).unwrap_or(usize::MAX);
            if len == 0 || len > count - covered {
                return Err(format!("{}: a run of {len} rows where {} remain", self.column, count - covered));
            }
            covered += len;
            runs.push((value, len));
        }
        Ok(runs)
    }

    fn end(&self) -> Result<(), String> {
        if self.at == self.data.len() {
            Ok(())
        } else {
            Err(format!("{}: {} bytes left over", self.column, self.data.len() - self.at))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Failure;
    use proptest::prelude::*;

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
        let block = encode(&mut rows);
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
        assert_eq!(decode(&block).unwrap(), rows);
        assert_eq!(decode_keys(&block.keys, 5).unwrap(), keys);
        assert_eq!(
            decode_outcomes(&block.outcomes, 5).unwrap(),
            vec![(Outcome::Ok, 2), (Outcome::Failed(Failure::ConnectRefused), 1), (Outcome::Ok, 2)]
        );
    }

    #[test]
    fn a_healthy_run_of_twenty_thousand_results_has_four_bytes_of_outcomes() {
        let mut rows: Vec<Row> =
            (0..10_000).flat_map(|k| [http(k, k % 50_000, 30_000 + k as u32), dns(k, k % 50_000)]).collect();
        let block = encode(&mut rows);
        assert_eq!(block.outcomes.len(), 4, "code 0, then 20,000 in three bytes");
        assert!(block.keys.len() < 200, "roster of 10,000 consecutive sites: {} bytes", block.keys.len());
        assert_eq!(
            decode(&block).unwrap(),
            rows.iter().map(|r| Row { timings: stored(&r.timings), ..r.clone() }).collect::<Vec<_>>()
        );
    }

    fn stored(t: &Timings) -> Timings {
        let q = |v: u32| timing_value(timing_code(v)).unwrap();
        Timings {
            dns_us: t.dns_us.map(q),
            connect_us: t.connect_us.map(q),
            tls_us: t.tls_us.map(q),
            first_byte_us: t.first_byte_us.map(q),
            total_us: q(t.total_us),
        }
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
        let block = encode(&mut rows);
        for cut in 0..block.details.len() {
            let broken = Block { details: block.details[..cut].to_vec(), ..block.clone() };
            assert!(decode(&broken).is_err());
        }
        let too_many = Block { count: 3, ..block.clone() };
        assert!(decode(&too_many).unwrap_err().contains("keys: ends early"));
        let bad_outcome = Block { outcomes: vec![200, 1, 0, 1], ..block.clone() };
        assert!(decode(&bad_outcome).is_err());
        assert!(timing_value(u32::MAX).is_none());
    }

    fn any_row() -> impl Strategy<Value = Row> {
        (
            0i64..50,
            any::<bool>(),
            prop_oneof![Just(0u8), 1u8..12],
            -100_000i64..100_000,
            1u8..4,
            proptest::option::of(100u16..600),
            proptest::array::uniform4(proptest::option::of(0u32..2_000)),
            0u32..2_000,
            any::<bool>(),
        )
            .prop_map(
                |(site_key, http, code, offset_ms, attempts, http_status, phases, total_us, has_cert)| Row {
                    site_key,
                    check: if http { CheckKind::Http } else { CheckKind::Dns },
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
            let block = encode(&mut unique);
            prop_assert_eq!(decode(&block).unwrap(), unique);
        }
    }
}
