//! `[[plan]]`, `[[goodwill]]` and `[[maintenance]]`: what customers are promised and owed, and
//! when the fleet is knowingly down. Maintenance windows are resolved after the inventory is
//! read, since they may name sites.

use std::collections::HashMap;

use serde::Deserialize;
use toml::Spanned;

use super::probe::bounds;
use super::{At, Parsed, Source, WholeNumber, known, valid_name};
use crate::fleet::Goodwill;
use crate::fleet::{
    Cluster, CreditTier, FleetError, FleetErrors, MaintenanceScope, MaintenanceWindow, Plan, PlanIdx, SiteIdx,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGoodwill {
    incident: Spanned<String>,
    months: Spanned<f64>,
    #[serde(default)]
    note: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPlan {
    name: Spanned<String>,
    target: Spanned<f64>,
    #[serde(default = "default_currency")]
    currency: String,
    #[serde(default)]
    credits: Vec<RawCredit>,
    confirm_after: Option<Spanned<WholeNumber>>,
}

fn default_currency() -> String {
    "EUR".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCredit {
    below: Spanned<f64>,
    credit: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMaintenance {
    cluster: Option<Spanned<String>>,
    sites: Option<Vec<Spanned<String>>>,
    start: Spanned<String>,
    end: Spanned<String>,
    #[serde(default)]
    note: String,
}

pub(crate) fn resolve_maintenance(
    source: &Source,
    parsed: &Parsed,
    site_index: &HashMap<&str, SiteIdx>,
    errors: &mut FleetErrors,
) -> Vec<MaintenanceWindow> {
    let path = source.config_path();
    let Ok(text) = source.config_text() else { return Vec::new() };
    let at = At { path, text };
    let mut windows = Vec::new();
    for (i, m) in parsed.raw_maintenance.iter().enumerate() {
        let field = |f: &str| format!("maintenance[{i}].{f}");
        let time = |v: &Spanned<String>, f: &str, errors: &mut FleetErrors| match v.get_ref().parse::<jiff::Timestamp>()
        {
            Ok(t) => Some(t),
            Err(_) => {
                errors.push(at.err(
                    v,
                    field(f),
                    format!("`{}` is not a UTC timestamp; expected e.g. 2026-10-14T22:00:00Z", v.get_ref()),
                ));
                None
            }
        };
        let start = time(&m.start, "start", errors);
        let end = time(&m.end, "end", errors);
        let scope = match (&m.cluster, &m.sites) {
            (Some(c), None) => match parsed.cluster_index.get(c.get_ref().trim()) {
                Some(&idx) => Some(MaintenanceScope::Cluster(idx)),
                None => {
                    errors.push(at.err(
                        c,
                        field("cluster"),
                        format!(
                            "unknown cluster `{}`; expected one of: {}",
                            c.get_ref(),
                            known(parsed.clusters.iter().map(|c| c.name.as_str()))
                        ),
                    ));
                    None
                }
            },
            (None, Some(sites)) if !sites.is_empty() => {
                let mut idx = Vec::new();
                for s in sites {
                    match site_index.get(s.get_ref().trim()) {
                        Some(&i) => idx.push(i),
                        None => errors.push(at.err(
                            s,
                            field("sites"),
                            format!("unknown site `{}`; expected a site id from the sites inventory", s.get_ref()),
                        )),
                    }
                }
                Some(MaintenanceScope::Sites(idx))
            }
            _ => {
                errors.push(at.err(
                    &m.start,
                    format!("maintenance[{i}]"),
                    "expected exactly one of `cluster` or a non-empty `sites` list",
                ));
                None
            }
        };
        if let (Some(start), Some(end), Some(scope)) = (start, end, scope) {
            if end <= start {
                errors.push(at.err(&m.end, field("end"), format!("end {end} is not after start {start}")));
                continue;
            }
            windows.push(MaintenanceWindow { scope, start, end, note: m.note.clone() });
        }
    }
    windows
}
/// Checks `[[plan]]`: names, targets, credit tiers (sorted from the highest threshold down),
/// currencies. Returns the plans and their index by name.
pub(super) fn plans(raw: Vec<RawPlan>, at: &At, errors: &mut FleetErrors) -> (Vec<Plan>, HashMap<String, PlanIdx>) {
    let path = at.path;
    let mut plans = Vec::new();
    let mut plan_index = HashMap::new();
    for (i, rp) in raw.into_iter().enumerate() {
        let field = |f: &str| format!("plan[{i}].{f}");
        let name = rp.name.get_ref().trim().to_string();
        if !valid_name(&name) {
            errors.push(at.err(
                &rp.name,
                field("name"),
                format!("`{name}` is not a valid plan name; expected letters, digits, '-', '_' or '.'"),
            ));
        } else if plan_index.contains_key(&name) {
            errors.push(at.err(&rp.name, field("name"), format!("duplicate plan `{name}`")));
        }
        let target = *rp.target.get_ref();
        if !(0.0..=100.0).contains(&target) {
            errors.push(at.err(
                &rp.target,
                field("target"),
                format!("{target} is not a percentage; expected e.g. 99.9"),
            ));
        }
        let mut credit_tiers = Vec::new();
        for (j, c) in rp.credits.iter().enumerate() {
            let below = *c.below.get_ref();
            if !(0.0..=100.0).contains(&below) || !(0.0..=100.0).contains(&c.credit) {
                errors.push(at.err(
                    &c.below,
                    format!("plan[{i}].credits[{j}]"),
                    "`below` and `credit` are percentages; expected values from 0 to 100",
                ));
            }
            credit_tiers.push(CreditTier { below_percent: below, credit_percent: c.credit });
        }
        credit_tiers.sort_by(|a, b| b.below_percent.total_cmp(&a.below_percent));
        if rp.currency.len() != 3 || !rp.currency.chars().all(|c| c.is_ascii_uppercase()) {
            errors.push(at.err(
                &rp.name,
                field("currency"),
                format!("`{}` is not a currency code; expected three capital letters such as EUR", rp.currency),
            ));
        }
        let confirm_after = rp
            .confirm_after
            .is_some()
            .then(|| at.number(&rp.confirm_after, &field("confirm_after"), bounds::CONFIRM_AFTER, 1, errors));
        plan_index.insert(name.clone(), plans.len());
        plans.push(Plan { name, target_percent: target, credit_tiers, currency: rp.currency, confirm_after });
    }
    if plans.is_empty() {
        errors.push(FleetError::at(path, None, "plan", "no plans defined; expected at least one [[plan]] table"));
    }
    (plans, plan_index)
}

/// Checks `[[goodwill]]`: each names an incident of a known cluster and a number of months.
pub(super) fn goodwill(raw: &[RawGoodwill], clusters: &[Cluster], at: &At, errors: &mut FleetErrors) -> Vec<Goodwill> {
    let mut goodwill = Vec::new();
    for (i, g) in raw.iter().enumerate() {
        let id = g.incident.get_ref().trim();
        let cluster_known = clusters.iter().any(|c| {
            id.strip_prefix(c.name.as_str())
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|stamp| jiff::civil::DateTime::strptime("%Y%m%dT%H%M", stamp).is_ok())
        });
        if !cluster_known {
            errors.push(at.err(&g.incident, format!("goodwill[{i}].incident"), format!("`{id}` is not an incident id; expected a cluster name and the start in UTC, e.g. fra-1-20261014T2200 (see `report incidents`)")));
        }
        if !(*g.months.get_ref() > 0.0 && *g.months.get_ref() <= 24.0) {
            errors.push(at.err(
                &g.months,
                format!("goodwill[{i}].months"),
                format!("{} is not a number of months from 0 to 24", g.months.get_ref()),
            ));
        }
        goodwill.push(Goodwill { incident: id.to_string(), months: *g.months.get_ref(), note: g.note.clone() });
    }
    goodwill
}
