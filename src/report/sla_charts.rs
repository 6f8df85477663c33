//! The charts of the SLA PDF, as SVG for the renderer: the customer's daily availability
//! against the plan's target, and the latency their visitors saw over the period.

use std::collections::HashMap;

use super::chart::{self, Chart, ChartSize, DailyAvailability};
use super::latency::{ChartKind, Vantages, build_chart};
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
}

impl LatencyCharts {
    fn get(&mut self, store: &dyn Store, scope: LatencyScope, period: &Period) -> Option<pdf::SvgChart> {
        self.drawn
            .entry(scope)
            .or_insert_with_key(|scope| {
                let vantages = Vantages::all(store).ok()?;
                let bands = build_chart(
                    store,
                    &vantages,
                    std::slice::from_ref(scope),
                    CheckKind::Http,
                    Some(Phase::FirstByte),
                    ChartKind::Bands,
                    period,
                )
                .ok()?;
                let svg = chart::render_svg(&bands, SIZE).ok()?;
                Some(pdf::SvgChart { title: "Time to first byte".into(), svg })
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
            charts.push(pdf::SvgChart { title: "Availability per day".into(), svg });
        }
    }
    // Latency: the site itself for a one-site customer, else the cluster most of its sites are on.
    let scope = match sla.sites.as_slice() {
        [(site, _)] => Some(LatencyScope::Site(fleet.sites[*site].id.clone())),
        sites => {
            let mut count = vec![0usize; fleet.clusters.len()];
            for (site, _) in sites {
                count[fleet.sites[*site].cluster] += 1;
            }
            (0..count.len()).max_by_key(|&c| count[c]).map(|c| LatencyScope::Cluster(fleet.clusters[c].name.clone()))
        }
    };
    if let Some(chart) = scope.and_then(|scope| latency_charts.get(store, scope, period)) {
        charts.push(chart);
    }
    charts
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
