//! What goes where in the SLA PDF: the title block, the verdict, key figures, credits, the site
//! and incident tables, charts and the method note, flowed onto pages by `layout`. Numbers are
//! formatted here, in the branding's language.

use super::branding::{Branding, Phrases, Rgb, fill};
use super::draw::Assets;
use super::layout::{Align, CONTENT_TOP, Column, Flow, Item, Node, Role, Style, TableStyle, table};
use super::text::{Fonts, Weight};
use super::{MaintenanceOverlap, SlaDocument};

/// Longest untrusted string kept, in characters; a name longer than this is cut with "…".
const MAX_NAME: usize = 160;
const MAX_TEXT: usize = 400;
/// Room kept under a table's heading: its header and a first row or two.
const TABLE_KEEP: f32 = 80.0;

struct Styles {
    body: Style,
    small: Style,
    label: Style,
    heading: Style,
}

impl Styles {
    fn new(branding: &Branding) -> Self {
        let c = &branding.colours;
        Styles {
            body: Style { size: 9.5, weight: Weight::Regular, colour: c.text },
            small: Style { size: 8.0, weight: Weight::Regular, colour: c.muted },
            label: Style { size: 7.5, weight: Weight::Bold, colour: c.muted },
            heading: Style { size: 12.5, weight: Weight::Bold, colour: c.primary },
        }
    }
}

/// The pages, and the structure tree their text and charts point into.
pub(crate) fn lay_out(
    doc: &SlaDocument,
    branding: &Branding,
    fonts: &Fonts,
    assets: &Assets,
) -> (Vec<Vec<Item>>, Vec<Node>) {
    let mut flow = Flow::new(fonts);
    let styles = Styles::new(branding);
    let p = &branding.phrases;
    title_block(&mut flow, doc, branding, assets, &styles);
    verdict(&mut flow, doc, branding, &styles);
    key_figures(&mut flow, doc, branding, &styles);
    credits(&mut flow, doc, branding, &styles);
    sites(&mut flow, doc, branding, &styles);
    incidents(&mut flow, doc, branding, &styles);
    for (index, chart) in doc.charts.iter().enumerate() {
        let title = fonts.clean(&chart.title, Weight::Bold, MAX_NAME);
        let (width, height) = assets.chart_size(index, flow.width());
        if title.is_empty() {
            flow.space(10.0);
            flow.need(height + 8.0);
        } else {
            heading(&mut flow, &styles, &title, height + 8.0);
        }
        let (x, y) = (flow.left(), flow.y);
        // A figure needs a text alternative (PDF/UA): the description, else the title, else
        // at least where the chart sits.
        let alt = [&chart.description, &chart.title]
            .into_iter()
            .map(|text| fonts.clean(text, Weight::Regular, MAX_TEXT))
            .find(|text| !text.is_empty())
            .unwrap_or_else(|| format!("Chart {} of {}", index + 1, doc.charts.len()));
        let node = Some(flow.node(Role::Figure { alt }, None));
        flow.push(Item::Chart { index, x, y, width, height, node });
        flow.space(height + 8.0);
    }
    let interval = interval(doc.method.probe_interval_seconds, p);
    let (vantages, confirm_after) = (doc.method.vantages.to_string(), doc.method.confirm_after.to_string());
    let locations = match doc.method.vantages {
        1 => p.locations_one.clone(),
        _ => fill(&p.locations_many, &[("count", &vantages)]),
    };
    let confirmation = match doc.method.confirm_after {
        0 | 1 => p.confirmation_one.clone(),
        _ => fill(&p.confirmation_many, &[("count", &confirm_after)]),
    };
    let mut method = fill(
        &p.method,
        &[
            ("interval", &interval),
            ("locations", &locations),
            ("confirmation", &confirmation),
            ("vantages", &vantages),
            ("confirm_after", &confirm_after),
        ],
    );
    if doc.method.vantages > 1 {
        let needed = doc.method.quorum.clamp(1, doc.method.vantages).to_string();
        method.push(' ');
        method.push_str(&fill(&p.quorum_rule, &[("needed", &needed), ("count", &vantages)]));
    }
    heading(&mut flow, &styles, &p.section_method, 4.0 * styles.body.line_height());
    let (x, width) = (flow.left(), flow.width());
    flow.paragraph(x, width, styles.body, &fonts.clean(&method, Weight::Regular, 4000));
    (flow.pages, flow.nodes)
}

fn title_block(flow: &mut Flow, doc: &SlaDocument, branding: &Branding, assets: &Assets, s: &Styles) {
    let fonts = flow.fonts;
    let colours = &branding.colours;
    let top = CONTENT_TOP - 22.0;
    let mut name_x = flow.left();
    if let Some((width, height)) = assets.logo_size(150.0, 38.0) {
        let (x, y) = (flow.left(), top + (38.0 - height) / 2.0);
        flow.push(Item::Logo { x, y, width, height });
        name_x += width + 10.0;
    }
    // Read first: the document title (the one H1), then its period, then who issued it.
    let title = Style { size: 15.0, weight: Weight::Bold, colour: colours.text };
    let right = flow.right();
    let document_title = fonts.clean(&branding.phrases.document_title, Weight::Bold, 80);
    flow.tagged(Role::Heading { level: 1, title: document_title.clone() }, |flow| {
        flow.text_at(right, top + 17.0, Align::Right, title, &document_title)
    });
    let period = Style { size: 10.5, weight: Weight::Regular, colour: colours.muted };
    flow.tagged(Role::Paragraph, |flow| {
        flow.text_at(right, top + 33.0, Align::Right, period, &fonts.clean(&doc.period_label, Weight::Regular, 80))
    });

    let provider = Style { size: 13.0, weight: Weight::Bold, colour: colours.primary };
    let name = fonts.clean(&branding.provider_name, Weight::Bold, MAX_NAME);
    let name_width = flow.right() - 190.0 - name_x;
    let name = fonts.wrap(&name, Weight::Bold, provider.size, name_width).into_iter().next().unwrap_or_default();
    flow.tagged(Role::Paragraph, |flow| {
        flow.text_at(name_x, top + 19.0 + provider.size / 2.0 - 1.0, Align::Left, provider, &name)
    });
    flow.y = top + 50.0;
    let y = flow.y;
    flow.rule(y, 1.6, colours.primary);
    flow.space(20.0);

    // The customer on the left, the period's particulars on the right.
    let p = &branding.phrases;
    let column_split = flow.left() + flow.width() * 0.58;
    let block_top = flow.y;
    let left = flow.left();
    label(flow, left, block_top, s, &p.prepared_for);
    flow.y = block_top + 6.0;
    let customer = Style { size: 15.0, weight: Weight::Bold, colour: colours.text };
    let name = fonts.clean(&doc.customer_name, Weight::Bold, MAX_NAME);
    let name = if name.is_empty() { doc.customer_id.clone() } else { name };
    let name_width = column_split - left - 16.0;
    flow.paragraph(left, name_width, customer, &name);
    flow.space(2.0);
    let details = [(&p.customer_id, &doc.customer_id), (&p.plan, &doc.plan_name), (&p.contact, &doc.contact)];
    let mut left_bottom = flow.y;
    for (key, value) in details {
        let value = fonts.clean(value, Weight::Regular, MAX_NAME);
        if value.is_empty() {
            continue;
        }
        left_bottom = key_value(flow, left, left_bottom, 70.0, name_width - 70.0, s, key, &value);
    }

    let mut right_bottom = block_top - 6.0;
    for (key, value) in
        [(&p.period, &doc.period_label), (&p.time_zone, &doc.time_zone), (&p.generated, &doc.generated_at)]
    {
        let value = fonts.clean(value, Weight::Regular, MAX_NAME);
        right_bottom =
            key_value(flow, column_split, right_bottom, 70.0, flow.right() - column_split - 70.0, s, key, &value);
    }
    flow.y = left_bottom.max(right_bottom) + 18.0;
}

/// A small upper-case label, baseline at `y`.
fn label(flow: &mut Flow, x: f32, y: f32, s: &Styles, text: &str) {
    let text = flow.fonts.clean(&text.to_uppercase(), Weight::Bold, 80);
    flow.tagged(Role::Paragraph, |flow| flow.text_at(x, y, Align::Left, s.label, &text));
}

/// "Key   value" with the value wrapped in its column; returns the y below it.
#[allow(clippy::too_many_arguments)]
fn key_value(
    flow: &mut Flow,
    x: f32,
    y: f32,
    key_width: f32,
    value_width: f32,
    s: &Styles,
    key: &str,
    value: &str,
) -> f32 {
    let fonts = flow.fonts;
    let line = s.body.line_height();
    let key = fonts.clean(key, Weight::Regular, 40);
    flow.tagged(Role::Paragraph, |flow| {
        flow.text_at(x, y + s.body.ascent(), Align::Left, s.small, &key);
        let mut y = y;
        for part in fonts.wrap(value, Weight::Regular, s.body.size, value_width) {
            flow.text_at(x + key_width, y + s.body.ascent(), Align::Left, s.body, &part);
            y += line;
        }
        y
    })
}

fn verdict(flow: &mut Flow, doc: &SlaDocument, branding: &Branding, s: &Styles) {
    let fonts = flow.fonts;
    let p = &branding.phrases;
    let colour = match doc.availability_percent {
        None => branding.colours.muted,
        Some(_) if doc.min_coverage_percent.is_some() => branding.colours.muted,
        Some(_) if doc.met => branding.colours.met,
        Some(_) => branding.colours.missed,
    };
    let availability = optional_percent(doc.availability_percent, 3, 2, p);
    let target = percent(doc.target_percent, 3, 0, false, p);
    let sentence = match (&doc.credit, doc.met) {
        _ if doc.availability_percent.is_none() => fill(&p.verdict_unmonitored, &[("target", &target)]),
        _ if doc.min_coverage_percent.is_some() => fill(
            &p.verdict_low_coverage,
            &[
                ("availability", &availability),
                ("target", &target),
                ("coverage", &optional_percent(doc.coverage_percent, 2, 1, p)),
                ("minimum", &optional_percent(doc.min_coverage_percent, 2, 0, p)),
            ],
        ),
        (_, true) => fill(&p.verdict_met, &[("availability", &availability), ("target", &target)]),
        (Some(credit), false) => fill(
            &p.verdict_missed_credit,
            &[
                ("availability", &availability),
                ("target", &target),
                ("credit_percent", &percent(credit.percent, 2, 0, false, p)),
                ("credit_amount", &money(credit.amount_cents, &credit.currency, p)),
            ],
        ),
        (None, false) => fill(&p.verdict_missed, &[("availability", &availability), ("target", &target)]),
    };
    let status = match doc.availability_percent {
        None => &p.target_unknown,
        Some(_) if doc.min_coverage_percent.is_some() => &p.target_unknown,
        Some(_) if doc.met => &p.target_met,
        Some(_) => &p.target_missed,
    };

    let big = Style { size: 15.0, weight: Weight::Bold, colour: branding.colours.text };
    let pad = 14.0;
    let text_x = flow.left() + 6.0 + pad;
    let text_width = flow.width() - 6.0 - 2.0 * pad;
    let lines = fonts.wrap(&fonts.clean(&sentence, Weight::Bold, MAX_TEXT), Weight::Bold, big.size, text_width);
    let height = pad + 12.0 + lines.len() as f32 * big.line_height() + pad - 4.0;
    flow.need(height);
    let top = flow.y;
    let (x, width) = (flow.left(), flow.width());
    flow.push(Item::Rect { x, y: top, width, height, fill: colour.tint(0.08) });
    flow.push(Item::Rect { x, y: top, width: 5.0, height, fill: colour });
    let status_style = Style { size: 8.5, weight: Weight::Bold, colour };
    let status = fonts.clean(&status.to_uppercase(), Weight::Bold, 60);
    flow.tagged(Role::Paragraph, |flow| {
        flow.text_at(text_x, top + pad + 7.0, Align::Left, status_style, &status);
        let mut baseline = top + pad + 12.0 + big.ascent();
        for line in &lines {
            flow.text_at(text_x, baseline, Align::Left, big, line);
            baseline += big.line_height();
        }
    });
    flow.y = top + height + 14.0;
    let _ = s;
}

fn key_figures(flow: &mut Flow, doc: &SlaDocument, branding: &Branding, s: &Styles) {
    let p = &branding.phrases;
    let colours = &branding.colours;
    let status = match doc.availability_percent {
        None => colours.muted,
        Some(_) if doc.met => colours.met,
        Some(_) => colours.missed,
    };
    let figures = [
        (&p.availability, optional_percent(doc.availability_percent, 3, 2, p), status),
        (&p.target, percent(doc.target_percent, 3, 0, false, p), colours.text),
        (&p.downtime, duration(doc.downtime_minutes, p), colours.text),
        (&p.maintenance_excluded, duration(doc.maintenance_minutes, p), colours.text),
        (&p.coverage, optional_percent(doc.coverage_percent, 2, 1, p), colours.text),
    ];
    let height = 48.0;
    flow.need(height + 10.0);
    let top = flow.y;
    let cell = flow.width() / figures.len() as f32;
    for (i, (name, value, colour)) in figures.iter().enumerate() {
        let x = flow.left() + i as f32 * cell;
        if i > 0 {
            flow.push(Item::Line {
                x1: x,
                y1: top + 2.0,
                x2: x,
                y2: top + height - 2.0,
                width: 0.6,
                colour: colours.rule,
            });
        }
        let inset = if i == 0 { 0.0 } else { 10.0 };
        let mut value_style = Style { size: 15.0, weight: Weight::Bold, colour: *colour };
        while value_style.size > 8.0 && flow.fonts.width(value, Weight::Bold, value_style.size) > cell - inset - 8.0 {
            value_style.size -= 0.5;
        }
        let name = flow.fonts.clean(name, Weight::Regular, 80);
        let lines = flow.fonts.wrap(&name, Weight::Regular, s.small.size, cell - inset - 6.0);
        flow.tagged(Role::Paragraph, |flow| {
            flow.text_at(x + inset, top + 18.0, Align::Left, value_style, value);
            for (j, line) in lines.iter().take(2).enumerate() {
                flow.text_at(x + inset, top + 32.0 + j as f32 * s.small.line_height(), Align::Left, s.small, line);
            }
        });
    }
    flow.y = top + height + 8.0;
    if doc.site_count > 1 && doc.downtime_site_minutes > doc.downtime_minutes {
        let (sites, site_time) = (doc.site_count.to_string(), duration(doc.downtime_site_minutes, p));
        let note = fill(&p.site_time_note, &[("sites", &sites), ("site_time", &site_time)]);
        let (left, width) = (flow.left(), flow.width());
        flow.paragraph(left, width, s.small, &note);
        flow.space(4.0);
    }
    let y = flow.y;
    flow.rule(y, 0.6, colours.rule);
    flow.space(6.0);
}

/// A section heading, kept on the same page as the first `keep` points of what follows.
fn heading(flow: &mut Flow, s: &Styles, text: &str, keep: f32) {
    flow.space(10.0);
    flow.need(s.heading.line_height() + 8.0 + keep);
    let baseline = flow.y + s.heading.ascent();
    let left = flow.left();
    let text = flow.fonts.clean(text, Weight::Bold, MAX_NAME);
    flow.tagged(Role::Heading { level: 2, title: text.clone() }, |flow| {
        flow.text_at(left, baseline, Align::Left, s.heading, &text)
    });
    flow.y += s.heading.line_height() + 6.0;
}

fn table_style(branding: &Branding, s: &Styles) -> TableStyle {
    let c = &branding.colours;
    TableStyle {
        header: Style { size: 8.0, weight: Weight::Bold, colour: c.muted },
        body: Style { size: 8.5, ..s.body },
        header_fill: c.stripe,
        stripe: blend(c.stripe, Rgb(255, 255, 255)),
        rule: c.rule,
    }
}

fn blend(a: Rgb, b: Rgb) -> Rgb {
    let mix = |x: u8, y: u8| ((u16::from(x) + u16::from(y)) / 2) as u8;
    Rgb(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

fn credits(flow: &mut Flow, doc: &SlaDocument, branding: &Branding, s: &Styles) {
    let fonts = flow.fonts;
    let p = &branding.phrases;
    heading(flow, s, &p.section_credit, s.body.line_height());
    let line = match &doc.credit {
        Some(credit) => fill(
            &p.credit_line,
            &[
                ("tier", &fonts.clean(&credit.tier, Weight::Regular, MAX_NAME)),
                ("credit_percent", &percent(credit.percent, 2, 0, false, p)),
                ("credit_amount", &money(credit.amount_cents, &credit.currency, p)),
            ],
        ),
        None => p.no_credit.clone(),
    };
    let (x, width) = (flow.left(), flow.width());
    flow.paragraph(x, width, s.body, &fonts.clean(&line, Weight::Regular, MAX_TEXT));

    if doc.goodwill.is_empty() {
        return;
    }
    heading(flow, s, &p.section_goodwill, TABLE_KEEP);
    flow.paragraph(x, width, s.small, &fonts.clean(&p.goodwill_intro, Weight::Regular, MAX_TEXT));
    flow.space(4.0);
    let columns = [
        Column { title: p.col_incident.clone(), share: 2.2, align: Align::Left },
        Column { title: p.col_credit.clone(), share: 5.0, align: Align::Left },
        Column { title: p.col_amount.clone(), share: 1.4, align: Align::Right },
    ];
    let rows: Vec<Vec<String>> = doc
        .goodwill
        .iter()
        .map(|g| {
            vec![
                fonts.clean(&g.incident_id, Weight::Regular, MAX_NAME),
                fonts.clean(&g.text, Weight::Regular, MAX_TEXT),
                money(g.amount_cents, &g.currency, p),
            ]
        })
        .collect();
    table(flow, &clean_titles(fonts, columns), &rows, &table_style(branding, s));
}

fn clean_titles<const N: usize>(fonts: &Fonts, columns: [Column; N]) -> [Column; N] {
    columns.map(|c| Column { title: fonts.clean(&c.title, Weight::Bold, 60), ..c })
}

fn sites(flow: &mut Flow, doc: &SlaDocument, branding: &Branding, s: &Styles) {
    let fonts = flow.fonts;
    let p = &branding.phrases;
    heading(flow, s, &p.section_sites, TABLE_KEEP);
    if doc.sites.is_empty() {
        let (x, width) = (flow.left(), flow.width());
        flow.paragraph(x, width, s.body, &fonts.clean(&p.no_sites, Weight::Regular, MAX_TEXT));
        return;
    }
    let columns = [
        Column { title: p.col_site.clone(), share: 1.4, align: Align::Left },
        Column { title: p.col_hostname.clone(), share: 3.4, align: Align::Left },
        Column { title: p.col_cluster.clone(), share: 1.0, align: Align::Left },
        Column { title: p.col_availability.clone(), share: 1.3, align: Align::Right },
        Column { title: p.col_downtime.clone(), share: 1.25, align: Align::Right },
        Column { title: p.col_maintenance.clone(), share: 1.4, align: Align::Right },
    ];
    let rows: Vec<Vec<String>> = doc
        .sites
        .iter()
        .map(|site| {
            vec![
                fonts.clean(&site.site_id, Weight::Regular, MAX_NAME),
                fonts.clean(&site.hostname, Weight::Regular, MAX_NAME),
                fonts.clean(&site.cluster, Weight::Regular, MAX_NAME),
                // Three decimals on every row, so the decimal points line up.
                optional_percent(site.availability_percent, 3, 3, p),
                duration(site.downtime_minutes, p),
                duration(site.maintenance_minutes, p),
            ]
        })
        .collect();
    table(flow, &clean_titles(fonts, columns), &rows, &table_style(branding, s));
}

fn incidents(flow: &mut Flow, doc: &SlaDocument, branding: &Branding, s: &Styles) {
    let fonts = flow.fonts;
    let p = &branding.phrases;
    heading(flow, s, &p.section_incidents, TABLE_KEEP);
    if doc.incidents.is_empty() {
        let (x, width) = (flow.left(), flow.width());
        flow.paragraph(x, width, s.body, &fonts.clean(&p.no_incidents, Weight::Regular, MAX_TEXT));
        return;
    }
    let columns = [
        // Wide enough for an id of a short cluster name on one line ("fra-1-20261014T0800").
        Column { title: p.col_incident.clone(), share: 2.4, align: Align::Left },
        Column { title: p.col_start.clone(), share: 1.3, align: Align::Left },
        Column { title: p.col_end.clone(), share: 1.3, align: Align::Left },
        Column { title: p.col_duration.clone(), share: 1.0, align: Align::Right },
        Column { title: p.col_cause.clone(), share: 1.85, align: Align::Left },
        Column { title: p.col_cluster.clone(), share: 0.85, align: Align::Left },
        Column { title: p.col_in_maintenance.clone(), share: 1.3, align: Align::Left },
    ];
    let rows: Vec<Vec<String>> = doc
        .incidents
        .iter()
        .map(|incident| {
            let overlap = match incident.in_maintenance {
                MaintenanceOverlap::None => &p.in_maintenance_none,
                MaintenanceOverlap::Partial => &p.in_maintenance_partial,
                MaintenanceOverlap::Full => &p.in_maintenance_full,
            };
            vec![
                fonts.clean(&incident.id, Weight::Regular, MAX_NAME),
                fonts.clean(&incident.start, Weight::Regular, 40),
                fonts.clean(&incident.end, Weight::Regular, 40),
                duration(incident.duration_minutes, p),
                fonts.clean(&incident.cause, Weight::Regular, MAX_TEXT),
                fonts.clean(&incident.cluster, Weight::Regular, MAX_NAME),
                fonts.clean(overlap, Weight::Regular, 40),
            ]
        })
        .collect();
    table(flow, &clean_titles(fonts, columns), &rows, &table_style(branding, s));
}

/// `value` with at most `max_decimals` decimals, trailing zeros trimmed down to `min_decimals`.
/// `floor` rounds down, so 99.8999 never prints as a target-meeting "99.90".
pub(crate) fn number(value: f64, max_decimals: usize, min_decimals: usize, floor: bool, p: &Phrases) -> String {
    if !value.is_finite() {
        return "–".to_string();
    }
    let shown = if floor {
        crate::report::table::truncate_to(value, max_decimals)
    } else {
        let scale = 10f64.powi(max_decimals as i32);
        (value * scale).round() / scale
    };
    let text = format!("{:.*}", max_decimals, shown);
    let (integer, decimals) = text.split_once('.').unwrap_or((&text, ""));
    let mut decimals = decimals.to_string();
    while decimals.len() > min_decimals && decimals.ends_with('0') {
        decimals.pop();
    }
    let integer = group_thousands(integer, &p.thousands_separator);
    if decimals.is_empty() { integer } else { format!("{integer}{}{decimals}", p.decimal_separator) }
}

fn group_thousands(integer: &str, separator: &str) -> String {
    let (sign, digits) = integer.strip_prefix('-').map_or(("", integer), |d| ("-", d));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push_str(separator);
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

pub(crate) fn percent(value: f64, max_decimals: usize, min_decimals: usize, floor: bool, p: &Phrases) -> String {
    // No-break spaces: a figure and its unit never part at a line end.
    fill(&p.percent, &[("value", &number(value, max_decimals, min_decimals, floor, p))]).replace(' ', "\u{A0}")
}

/// A measured percentage, rounded down; `not_monitored` when there is none.
fn optional_percent(value: Option<f64>, max_decimals: usize, min_decimals: usize, p: &Phrases) -> String {
    match value {
        Some(value) => percent(value, max_decimals, min_decimals, true, p),
        None => p.not_monitored.clone(),
    }
}

pub(crate) fn money(cents: i64, currency: &str, p: &Phrases) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let cents = cents.unsigned_abs();
    let units = group_thousands(&(cents / 100).to_string(), &p.thousands_separator);
    let amount = format!("{sign}{units}{}{:02}", p.decimal_separator, cents % 100);
    let currency: String = currency.chars().filter(|c| c.is_ascii_alphanumeric()).take(8).collect();
    fill(&p.money, &[("currency", &currency), ("amount", &amount)]).trim().replace(' ', "\u{A0}")
}

/// Minutes as days, hours and minutes: "2 h 5 min", "1 d 3 min". Exact to the minute.
pub(crate) fn duration(minutes: i64, p: &Phrases) -> String {
    let sign = if minutes < 0 { "-" } else { "" };
    let total = minutes.unsigned_abs();
    let (days, hours, mins) = (total / 1440, total / 60 % 24, total % 60);
    // A number stays with its unit; a long duration may break between the parts. Zero parts
    // are left out ("3 h", not "3 h 0 min"), except for no time at all.
    let parts = [(days, &p.unit_days), (hours, &p.unit_hours), (mins, &p.unit_minutes)];
    let text =
        parts.iter().filter(|(n, _)| *n > 0).map(|(n, unit)| format!("{n}\u{A0}{unit}")).collect::<Vec<_>>().join(" ");
    let text = if text.is_empty() { format!("0\u{A0}{}", p.unit_minutes) } else { text };
    format!("{sign}{text}")
}

fn interval(seconds: u64, p: &Phrases) -> String {
    match (seconds / 60, seconds % 60) {
        (0, s) => format!("{s} {}", p.unit_seconds),
        (m, 0) => format!("{m} {}", p.unit_minutes),
        (m, s) => format!("{m} {} {s} {}", p.unit_minutes, p.unit_seconds),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_never_round_up_into_the_target() {
        let p = Phrases::default();
        assert_eq!(percent(99.8999, 3, 2, true, &p), "99.899%");
        assert_eq!(percent(99.87, 3, 2, true, &p), "99.87%");
        assert_eq!(percent(100.0, 3, 2, true, &p), "100.00%");
        assert_eq!(percent(99.9, 3, 0, false, &p), "99.9%");
        assert_eq!(percent(10.0, 2, 0, false, &p), "10%");
        assert_eq!(percent(f64::NAN, 3, 2, true, &p), "–%");
    }

    #[test]
    fn money_and_durations() {
        let mut p = Phrases::default();
        let plain = |s: String| s.replace('\u{A0}', " ");
        assert_eq!(plain(money(200, "EUR", &p)), "EUR 2.00");
        assert_eq!(plain(money(123456789, "USD", &p)), "USD 1,234,567.89");
        assert_eq!(plain(money(-5, "EUR", &p)), "EUR -0.05");
        assert_eq!(plain(duration(0, &p)), "0 min");
        assert_eq!(plain(duration(125, &p)), "2 h 5 min");
        assert_eq!(plain(duration(1443, &p)), "1 d 3 min");
        assert_eq!(plain(duration(180, &p)), "3 h");
        assert_eq!(interval(60, &p), "1 min");
        assert_eq!(interval(30, &p), "30 s");
        p.decimal_separator = ",".into();
        p.thousands_separator = ".".into();
        p.money = "{amount} {currency}".into();
        assert_eq!(plain(money(123456, "EUR", &p)), "1.234,56 EUR");
        assert_eq!(number(99.87, 3, 2, true, &p), "99,87");
    }
}
