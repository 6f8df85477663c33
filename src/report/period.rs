//! The period a report covers: half-open [start, end) in UTC, chosen as a calendar month or day
//! in a named time zone (`--period 2026-10 --tz Europe/Berlin`), as explicit bounds
//! (`--from 2026-10-01 --to 2026-10-08`), or as the last stretch of time (`--last 7d`).

use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, civil};

/// A period as asked for by a report command (flags, or the demo), before it is resolved.
#[derive(Clone, Debug, Default)]
pub struct PeriodSpec {
    /// A calendar month (2026-10), day (2026-10-14) or year (2026) in `tz`.
    pub period: Option<String>,
    /// Start: a date (midnight in `tz`) or an RFC 3339 time; comes with `to`.
    pub from: Option<String>,
    /// End (exclusive): a date (midnight in `tz`) or an RFC 3339 time.
    pub to: Option<String>,
    /// The last stretch of time before now: 24h, 7d, 30d.
    pub last: Option<String>,
    /// Time zone for calendar periods and for times shown in the report; empty means UTC.
    pub tz: String,
    /// "Now" instead of the clock (deterministic reports in tests and demos).
    pub now: Option<Timestamp>,
}

/// A period that cannot be resolved: says which flag and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PeriodError(pub String);

impl From<String> for PeriodError {
    fn from(message: String) -> Self {
        PeriodError(message)
    }
}

/// A resolved period.
#[derive(Debug, Clone, PartialEq)]
pub struct Period {
    pub start: Timestamp,
    pub end: Timestamp,
    /// How to name it in a report: "2026-10", "2026-10-01 – 2026-10-08", "last 7d".
    pub label: String,
    pub tz: TimeZone,
    /// "Now" when the report was made (real or overridden); a period may reach past it.
    pub now: Timestamp,
}

impl Period {
    pub fn start_ms(&self) -> i64 {
        self.start.as_millisecond()
    }
    pub fn end_ms(&self) -> i64 {
        self.end.as_millisecond()
    }
    /// The part of the period that has happened: [start, min(end, now)).
    pub fn elapsed_end_ms(&self) -> i64 {
        self.end.min(self.now).as_millisecond().max(self.start_ms())
    }
    /// A time as RFC 3339 in the report's zone, for programs: "2026-10-14T22:00:00+02:00", or
    /// "2026-10-14T20:00:00Z" in UTC.
    pub fn rfc3339(&self, ms: i64) -> String {
        let Ok(t) = Timestamp::from_millisecond(ms) else { return ms.to_string() };
        if self.tz == TimeZone::UTC {
            return t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        }
        t.to_zoned(self.tz.clone()).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }

    /// The label made safe for a file name: "2026-10", "2026-10-13_to_2026-10-15", "last_7d".
    pub fn file_label(&self) -> String {
        self.label
            .replace(" – ", "_to_")
            .chars()
            .filter_map(|c| match c {
                c if c.is_ascii_alphanumeric() || c == '-' || c == '_' => Some(c),
                ' ' => Some('_'),
                _ => None,
            })
            .collect()
    }

    /// A time in the report's zone, to the minute: "2026-10-14 22:00 CEST".
    pub fn show(&self, ms: i64) -> String {
        Timestamp::from_millisecond(ms)
            .map(|t| t.to_zoned(self.tz.clone()).strftime("%Y-%m-%d %H:%M %Z").to_string())
            .unwrap_or_else(|_| ms.to_string())
    }
}

impl PeriodSpec {
    /// Resolves the selection; with none given, `default_last` (e.g. "7d") before now.
    pub fn resolve(&self, default_last: &str) -> Result<Period, PeriodError> {
        let now = self.now.unwrap_or_else(Timestamp::now);
        let tz = time_zone(&self.tz)?;
        if let Some(text) = &self.period {
            let (start, end) = calendar_period(text, &tz)?;
            return Ok(Period { start, end, label: text.clone(), tz, now });
        }
        if let (Some(from), Some(to)) = (&self.from, &self.to) {
            let start = instant(from, &tz).map_err(|e| format!("--from: {e}"))?;
            let end = instant(to, &tz).map_err(|e| format!("--to: {e}"))?;
            if end <= start {
                return Err(PeriodError(format!("--to ({to}) must be after --from ({from})")));
            }
            return Ok(Period { start, end, label: range_label(start, end, &tz), tz, now });
        }
        let last = self.last.as_deref().unwrap_or(default_last);
        let length = crate::fleet::parse_duration(last).map_err(|e| format!("--last: {e}"))?;
        let length = jiff::SignedDuration::try_from(length).map_err(|_| format!("--last {last}: too long"))?;
        let start = now.checked_sub(length).map_err(|_| format!("--last {last}: too long"))?;
        Ok(Period { start, end: now, label: format!("last {last}"), tz, now })
    }

    /// The given period, or the last full calendar month before now in the zone (the SLA
    /// reports' default).
    pub fn resolve_or_last_month(&self) -> Result<Period, PeriodError> {
        if self.period.is_some() || self.from.is_some() || self.last.is_some() {
            return self.resolve("30d");
        }
        let tz = time_zone(&self.tz)?;
        let now = self.now.unwrap_or_else(Timestamp::now).to_zoned(tz);
        let last_month = now.date().first_of_month().checked_sub(1.month()).map_err(|e| PeriodError(e.to_string()))?;
        PeriodSpec { period: Some(last_month.strftime("%Y-%m").to_string()), ..self.clone() }.resolve("30d")
    }
}

/// How people read explicit bounds, in the report's zone, with the last day included: whole days
/// as dates ("2026-10-13 – 2026-10-15" for [13th, 16th)), else times ("2026-10-13 06:00 –
/// 2026-10-15 18:00 CEST").
fn range_label(start: Timestamp, end: Timestamp, tz: &TimeZone) -> String {
    let (from, to) = (start.to_zoned(tz.clone()), end.to_zoned(tz.clone()));
    let midnight = |z: &jiff::Zoned| z.time() == civil::Time::midnight();
    if midnight(&from) && midnight(&to) {
        let last = to.date().yesterday().unwrap_or(to.date());
        if last <= from.date() {
            return from.date().to_string();
        }
        return format!("{} – {}", from.date(), last);
    }
    format!("{} – {}", from.strftime("%Y-%m-%d %H:%M"), to.strftime("%Y-%m-%d %H:%M %Z"))
}

pub fn time_zone(name: &str) -> Result<TimeZone, PeriodError> {
    if name.is_empty() || name.eq_ignore_ascii_case("utc") {
        return Ok(TimeZone::UTC);
    }
    jiff::tz::db()
        .get(name)
        .map_err(|_| PeriodError(format!("unknown time zone `{name}`; expected an IANA name such as Europe/Berlin")))
}

/// "2026" → the year, "2026-10" → the month, "2026-10-14" → the day, each in `tz`.
fn calendar_period(text: &str, tz: &TimeZone) -> Result<(Timestamp, Timestamp), PeriodError> {
    let bad = || PeriodError(format!("--period `{text}`: expected a year (2026), month (2026-10) or day (2026-10-14)"));
    let parts: Vec<&str> = text.split('-').collect();
    let num = |s: &str| s.parse::<i16>().map_err(|_| bad());
    let (start, end) = match parts.as_slice() {
        [y] => {
            let start = civil::date(num(y)?, 1, 1);
            (start, start.checked_add(1.year()).map_err(|_| bad())?)
        }
        [y, m] => {
            let start = civil::Date::new(num(y)?, num(m)? as i8, 1).map_err(|_| bad())?;
            (start, start.checked_add(1.month()).map_err(|_| bad())?)
        }
        [y, m, d] => {
            let start = civil::Date::new(num(y)?, num(m)? as i8, num(d)? as i8).map_err(|_| bad())?;
            (start, start.checked_add(1.day()).map_err(|_| bad())?)
        }
        _ => return Err(bad()),
    };
    let at = |d: civil::Date| d.to_zoned(tz.clone()).map(|z| z.timestamp()).map_err(|e| e.to_string());
    Ok((at(start)?, at(end)?))
}

/// A date (midnight in `tz`) or an RFC 3339 timestamp.
pub fn instant(text: &str, tz: &TimeZone) -> Result<Timestamp, PeriodError> {
    if let Ok(t) = text.parse::<Timestamp>() {
        return Ok(t);
    }
    let date: civil::Date = text
        .parse()
        .map_err(|_| PeriodError(format!("`{text}` is neither a date (2026-10-01) nor an RFC 3339 time")))?;
    date.to_zoned(tz.clone()).map(|z| z.timestamp()).map_err(|e| PeriodError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(f: impl FnOnce(&mut PeriodSpec)) -> PeriodSpec {
        let mut a =
            PeriodSpec { tz: "UTC".into(), now: Some("2026-11-05T12:00:00Z".parse().unwrap()), ..Default::default() };
        f(&mut a);
        a
    }

    #[test]
    fn calendar_month_in_a_time_zone() {
        let p = args(|a| {
            a.period = Some("2026-10".into());
            a.tz = "Europe/Berlin".into();
        })
        .resolve("7d")
        .unwrap();
        // October 2026 in Berlin: starts at CEST (UTC+2), ends after the switch to CET (UTC+1).
        assert_eq!(p.start.to_string(), "2026-09-30T22:00:00Z");
        assert_eq!(p.end.to_string(), "2026-10-31T23:00:00Z");
        assert_eq!(p.show(p.start_ms()), "2026-10-01 00:00 CEST");
        assert_eq!(p.rfc3339(p.start_ms()), "2026-10-01T00:00:00+02:00");
    }

    #[test]
    fn explicit_bounds_and_last() {
        let p = args(|a| {
            a.from = Some("2026-10-01".into());
            a.to = Some("2026-10-08T06:00:00Z".into());
        })
        .resolve("7d")
        .unwrap();
        assert_eq!(
            (p.start.to_string(), p.end.to_string()),
            ("2026-10-01T00:00:00Z".into(), "2026-10-08T06:00:00Z".into())
        );
        // People read bounds with the last day included, in the report's zone.
        assert_eq!(p.label, "2026-10-01 00:00 – 2026-10-08 06:00 UTC");
        let days = args(|a| {
            a.from = Some("2026-10-13".into());
            a.to = Some("2026-10-16".into());
        })
        .resolve("7d")
        .unwrap();
        assert_eq!(
            (days.label.as_str(), days.file_label().as_str()),
            ("2026-10-13 – 2026-10-15", "2026-10-13_to_2026-10-15")
        );
        let one_day = args(|a| {
            a.from = Some("2026-10-13".into());
            a.to = Some("2026-10-14".into());
        })
        .resolve("7d")
        .unwrap();
        assert_eq!(one_day.label, "2026-10-13");
        let berlin = args(|a| {
            a.from = Some("2026-10-13T04:00:00Z".into());
            a.to = Some("2026-10-15T16:00:00Z".into());
            a.tz = "Europe/Berlin".into();
        })
        .resolve("7d")
        .unwrap();
        assert_eq!(berlin.label, "2026-10-13 06:00 – 2026-10-15 18:00 CEST");
        let p = args(|a| a.last = Some("24h".into())).resolve("7d").unwrap();
        assert_eq!(p.start.to_string(), "2026-11-04T12:00:00Z");
        let p = args(|_| {}).resolve("7d").unwrap();
        assert_eq!(p.start.to_string(), "2026-10-29T12:00:00Z");
        assert_eq!(p.elapsed_end_ms(), p.end_ms());
    }

    #[test]
    fn bad_selections_say_what_was_expected() {
        assert!(args(|a| a.period = Some("October".into())).resolve("7d").unwrap_err().0.contains("expected a year"));
        assert!(args(|a| a.tz = "Mars/Olympus".into()).resolve("7d").unwrap_err().0.contains("unknown time zone"));
        let reversed = args(|a| {
            a.from = Some("2026-10-08".into());
            a.to = Some("2026-10-01".into());
        });
        assert!(reversed.resolve("7d").unwrap_err().0.contains("must be after"));
    }
}
