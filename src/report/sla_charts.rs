//! The charts of the SLA PDF, as SVG for the renderer: the customer's daily availability
//! against the plan's target, and the latency their visitors saw over the period.

use std::collections::HashMap;

use super::chart::{self, Chart, ChartSize, DailyAvailability, LatencyBands};
use super::latency::{ChartKind, PeriodChecks, Vantages, build_chart, scope_name};
use super::pdf;
use super::period::Period;
use crate::analysis::Span;
use crate::analysis::period::Availability;
use crate::analysis::sla::{CustomerSla, daily_availability};
use crate::fleet::Fleet;
use crate::probe::{CheckKind, Phase};
use crate::store::{LatencyScope, Store};

/// Chart size in SVG user units; the PDF scales it to the text width.
const SIZE: ChartSize = ChartSize { width: 640, height: 260 };

/// Latency charts already drawn for this period, by scope. Every customer whose sites are
/// mostly on one cluster gets that cluster's chart: drawn once for `report sla --all`, not once
/// per customer (a month of hourly percentiles is 720 histograms to read and walk).
#[derive(Default)]
pub struct LatencyCharts {
    drawn: HashMap<LatencyScope, Option<pdf::SvgChart>>,
    /// The failed checks under the charts, counted for every chart at once when known ahead.
    checks: Option<PeriodChecks>,
}

impl LatencyCharts {
    /// Counts the failed checks under the charts of all `slas` in one pass over the period's
    /// runs, rather than one pass per chart (`report sla --all`).
    pub fn count_checks(&mut self, fleet: &Fleet, store: &dyn Store, slas: &[CustomerSla], period: &Period) {
        let mut seen = std::collections::HashSet::new();
        let scopes: Vec<LatencyScope> =
            slas.iter().filter_map(|sla| latency_scope(fleet, sla)).filter(|s| seen.insert(s.clone())).collect();
        let Ok(vantages) = Vantages::all(store) else { return };
        self.checks = PeriodChecks::read((store, &vantages), &scopes, CheckKind::Http, period).ok();
    }

    fn get(&mut self, store: &dyn Store, scope: LatencyScope, period: &Period) -> Option<pdf::SvgChart> {
        let checks = self.checks.as_ref();
        self.drawn
            .entry(scope)
            .or_insert_with_key(|scope| {
                let vantages = Vantages::all(store).ok()?;
                let mut bands = build_chart(
                    store,
                    &vantages,
                    checks,
                    std::slice::from_ref(scope),
                    CheckKind::Http,
                    Some(Phase::FirstByte),
                    ChartKind::Bands,
                    period,
                )
                .ok()?;
                // The PDF prints the period and "Time to first byte" above the chart: its own
                // title needs only what was measured, short enough to fit the chart's width.
                if let Chart::Bands(bands) = &mut bands {
                    bands.title = format!("{}, http first byte", scope_name(scope));
                }
                let svg = chart::render_svg(&bands, SIZE).ok()?;
                let description = match &bands {
                    Chart::Bands(bands) => describe_bands(bands, scope),
                    _ => String::new(),
                };
                Some(pdf::SvgChart { title: "Time to first byte".into(), description, svg })
            })
            .clone()
    }
}

pub fn charts(
    fleet: &Fleet,
    period: &Period,
    analysis: &Availability,
    sla: &CustomerSla,
    store: &dyn Store,
    latency_charts: &mut LatencyCharts,
) -> Vec<pdf::SvgChart> {
    let mut charts = Vec::new();
    let days = day_spans(period);
    if !days.is_empty() {
        let sites: Vec<usize> = sla.sites.iter().map(|(s, _)| *s).collect();
        let values = daily_availability(
            &analysis.history,
            &sites,
            &analysis.maintenance,
            &days.iter().map(|(_, s, _)| *s).collect::<Vec<_>>(),
        );
        let daily = Chart::DailyAvailability(DailyAvailability {
            title: "Availability per day (maintenance excluded)".into(),
            days: days.iter().map(|(d, _, _)| *d).zip(values.into_iter().map(|v| v.map(|a| a * 100.0))).collect(),
            target_percent: sla.target_percent,
            partial: days.iter().map(|(_, _, partial)| *partial).collect(),
        });
        if let Ok(svg) = chart::render_svg(&daily, SIZE) {
            let description = match &daily {
                Chart::DailyAvailability(daily) => describe_daily(daily),
                _ => String::new(),
            };
            charts.push(pdf::SvgChart { title: "Availability per day".into(), description, svg });
        }
    }
    if let Some(chart) = latency_scope(fleet, sla).and_then(|scope| latency_charts.get(store, scope, period)) {
        charts.push(chart);
    }
    charts
}

/// Whose latency a customer's PDF charts: the site itself for a one-site customer, else the
/// cluster most of its sites are on.
fn latency_scope(fleet: &Fleet, sla: &CustomerSla) -> Option<LatencyScope> {
    match sla.sites.as_slice() {
        [(site, _)] => Some(LatencyScope::Site(fleet.sites[*site].id.clone())),
        sites => {
            let mut count = vec![0usize; fleet.clusters.len()];
            for (site, _) in sites {
                count[fleet.sites[*site].cluster] += 1;
            }
            (0..count.len()).max_by_key(|&c| count[c]).map(|c| LatencyScope::Cluster(fleet.clusters[c].name.clone()))
        }
    }
}

/// The calendar days of the period in its time zone, with their UTC spans.
/// The period's days in its zone: each day's part of the period, and whether that is only a part.
fn day_spans(period: &Period) -> Vec<(jiff::civil::Date, Span, bool)> {
    let mut days = Vec::new();
    let Ok(mut day) = period.start.to_zoned(period.tz.clone()).start_of_day() else { return days };
    while day.timestamp() < period.end && days.len() < 400 {
        let Ok(next) = day.tomorrow().and_then(|d| d.start_of_day()) else { break };
        let whole = Span::new(day.timestamp().as_millisecond(), next.timestamp().as_millisecond());
        let part = whole.intersect(&Span::new(period.start_ms(), period.end_ms()));
        days.push((day.date(), part, part != whole));
        day = next;
    }
    days
}

/// "14 October"
fn day_words(date: jiff::civil::Date) -> String {
    date.strftime("%-d %B").to_string()
}

/// The daily availability chart in words, for readers who cannot see it: the days it covers,
/// the worst day, and the target line.
fn describe_daily(chart: &DailyAvailability) -> String {
    let (Some((first, _)), Some((last, _))) = (chart.days.first(), chart.days.last()) else { return String::new() };
    let span = format!("Availability per day, {} to {}", first.strftime("%-d"), day_words(*last));
    let target = format!("target {} %", number(chart.target_percent));
    let lowest = chart
        .days
        .iter()
        .filter_map(|(day, value)| value.map(|v| (*day, v)))
        .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    match lowest {
        None => format!("{span}: no day was monitored; {target}"),
        Some((_, lowest)) if lowest >= 100.0 => format!("{span}: 100 % every monitored day; {target}"),
        Some((day, lowest)) => {
            let below = chart.days.iter().filter(|(_, v)| v.is_some_and(|v| v < chart.target_percent)).count();
            format!(
                "{span}: lowest {} % on {}; {below} of {} days below the target; {target}",
                number(lowest),
                day_words(day),
                chart.days.len()
            )
        }
    }
}

/// The latency bands in words: what was measured, the range of the hourly medians and the
/// slowest p99 with its time.
fn describe_bands(chart: &LatencyBands, scope: &LatencyScope) -> String {
    let what = format!("Time to first byte of {}, median and p90, p99 and maximum over time", scope_name(scope));
    let ms = |v: f64| if v >= 1000.0 { format!("{} s", number(v / 1000.0)) } else { format!("{} ms", number(v)) };
    let medians = chart.points.iter().map(|p| p.figures.p50_ms);
    let (low, high) = medians.fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let Some(slowest) = chart.points.iter().max_by(|a, b| a.figures.p99_ms.total_cmp(&b.figures.p99_ms)) else {
        return format!("{what}: no successful check was timed in the period{}", describe_strip(chart));
    };
    let when = jiff::Timestamp::from_millisecond(slowest.start_ms)
        .map(|t| t.to_zoned(chart.tz.clone()).strftime("%-d %B %H:%M").to_string())
        .unwrap_or_default();
    format!(
        "{what}: median between {} and {}; highest p99 {} at {when}{}",
        ms(low),
        ms(high),
        ms(slowest.figures.p99_ms),
        describe_strip(chart)
    )
}

/// The strip of failed checks under the bands in words: "; of 24 hours, all checks failed in
/// 2, some in 1, nothing was measured in 1" (nothing without a strip).
pub(crate) fn describe_strip(chart: &LatencyBands) -> String {
    let Some(first) = chart.checks.first() else { return String::new() };
    let unit = match first.end_ms - first.start_ms {
        3_600_000 => "hours",
        86_400_000 => "days",
        _ => "time buckets",
    };
    let count = |test: fn(&chart::CheckCell) -> bool| chart.checks.iter().filter(|c| test(c)).count();
    let all = count(|c| c.checks > 0 && c.failed >= c.checks);
    let some = count(|c| c.failed > 0 && c.failed < c.checks);
    let unmeasured = count(|c| c.checks == 0);
    let n = chart.checks.len();
    if all + some + unmeasured == 0 {
        return format!("; no check failed in {n} {unit}");
    }
    let parts: Vec<String> =
        [(all, "all checks failed in"), (some, "some failed in"), (unmeasured, "nothing was measured in")]
            .into_iter()
            .filter(|(count, _)| *count > 0)
            .map(|(count, what)| format!("{what} {count}"))
            .collect();
    format!("; of {n} {unit}, {}", parts.join(", "))
}

/// Two decimals at most, rounded down (99.999 is not "100"), trailing zeros dropped: "99.28",
/// "97.9", "100".
fn number(v: f64) -> String {
    let text = format!("{:.2}", (v * 100.0).floor() / 100.0);
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::latency::Percentiles;
    use crate::report::chart::BandPoint;

    #[test]
    fn the_daily_chart_is_described_by_its_worst_day() {
        let days = (1..=31)
            .map(|d| (jiff::civil::date(2026, 10, d), (d != 9).then_some(if d == 14 { 97.9 } else { 99.99 })))
            .collect();
        let chart = DailyAvailability { title: String::new(), days, target_percent: 99.9, partial: Vec::new() };
        assert_eq!(
            describe_daily(&chart),
            "Availability per day, 1 to 31 October: lowest 97.9 % on 14 October; 1 of 31 days below the target; \
             target 99.9 %"
        );
        let perfect = DailyAvailability {
            days: vec![(jiff::civil::date(2026, 10, 1), Some(100.0)), (jiff::civil::date(2026, 10, 2), None)],
            ..chart
        };
        assert_eq!(
            describe_daily(&perfect),
            "Availability per day, 1 to 2 October: 100 % every monitored day; target 99.9 %"
        );
        // 99.999 rounds down: a day below 100 % never reads as a perfect one.
        assert_eq!(number(99.999), "99.99");
    }

    #[test]
    fn the_latency_chart_is_described_by_medians_and_worst_p99() {
        let hour = 3_600_000;
        let start = jiff::Timestamp::from_second(1_790_812_800).expect("time").as_millisecond(); // 2026-10-01 00:00 UTC
        let point = |i: i64, p50: f64, p99: f64| BandPoint {
            start_ms: start + i * hour,
            end_ms: start + (i + 1) * hour,
            figures: Percentiles {
                count: 10,
                min_ms: 1.0,
                p50_ms: p50,
                p90_ms: p50,
                p99_ms: p99,
                max_ms: p99,
                mean_ms: p50,
            },
        };
        let chart = LatencyBands {
            title: String::new(),
            from_ms: start,
            to_ms: start + 3 * hour,
            tz: jiff::tz::TimeZone::UTC,
            points: vec![point(0, 42.0, 80.0), point(2, 55.5, 1250.0)],
            checks: Vec::new(),
        };
        assert_eq!(
            describe_bands(&chart, &LatencyScope::Site("c1-s1".into())),
            "Time to first byte of site c1-s1, median and p90, p99 and maximum over time: median between 42 ms and \
             55.5 ms; highest p99 1.25 s at 1 October 02:00"
        );
        // The strip under the bands, in words.
        let cell = |i: i64, checks, failed| chart::CheckCell {
            start_ms: start + i * hour,
            end_ms: start + (i + 1) * hour,
            checks,
            failed,
        };
        let struck = LatencyBands { checks: vec![cell(0, 60, 0), cell(1, 60, 60), cell(2, 60, 6)], ..chart.clone() };
        assert!(
            describe_bands(&struck, &LatencyScope::Cluster("fra-1".into()))
                .ends_with("at 1 October 02:00; of 3 hours, all checks failed in 1, some failed in 1"),
        );
        let empty = LatencyBands { points: Vec::new(), ..chart };
        assert!(
            describe_bands(&empty, &LatencyScope::Cluster("fra-1".into()))
                .ends_with("no successful check was timed in the period")
        );
    }
}
