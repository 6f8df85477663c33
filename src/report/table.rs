//! Tables for people and programs: aligned terminal text, Markdown, HTML and CSV from one
//! description, so every report offers the same formats with the same columns.

use std::io::Write;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// Columns (header, alignment) and rows of already formatted cells.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub columns: Vec<(&'static str, Align)>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(columns: &[(&'static str, Align)]) -> Table {
        Table { columns: columns.to_vec(), rows: Vec::new() }
    }

    /// Adds a row; untrusted text in it is neutralised once, here, for every format.
    pub fn push(&mut self, row: Vec<String>) {
        debug_assert_eq!(row.len(), self.columns.len());
        self.rows.push(row.into_iter().map(|cell| neutralize(&cell).into_owned()).collect());
    }

    /// Aligned columns for a terminal; long cells are cut at `max_width` characters.
    pub fn text(&self, max_width: usize) -> String {
        let cut = |s: &str| -> String {
            let clean: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
            if clean.chars().count() > max_width {
                format!("{}…", clean.chars().take(max_width.saturating_sub(1)).collect::<String>())
            } else {
                clean
            }
        };
        let cells: Vec<Vec<String>> = self.rows.iter().map(|r| r.iter().map(|c| cut(c)).collect()).collect();
        let widths: Vec<usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, (h, _))| cells.iter().map(|r| r[i].chars().count()).max().unwrap_or(0).max(h.len()))
            .collect();
        let line = |row: Vec<&str>| {
            let parts: Vec<String> = row
                .iter()
                .zip(&self.columns)
                .zip(&widths)
                .map(|((cell, (_, align)), &w)| match align {
                    Align::Left => format!("{cell:<w$}"),
                    Align::Right => format!("{cell:>w$}"),
                })
                .collect();
            parts.join("  ").trim_end().to_string()
        };
        let mut out = line(self.columns.iter().map(|(h, _)| *h).collect());
        out.push('\n');
        for row in &cells {
            out.push_str(&line(row.iter().map(String::as_str).collect()));
            out.push('\n');
        }
        out
    }

    pub fn markdown(&self) -> String {
        // Markdown renders inline HTML: a name like `<img src=x onerror=...>` must stay text.
        let escape = |s: &str| escape_html(s).replace('|', "\\|").replace(['\n', '\r'], " ");
        let mut out = format!("| {} |\n", self.columns.iter().map(|(h, _)| *h).collect::<Vec<_>>().join(" | "));
        let rule: Vec<&str> =
            self.columns.iter().map(|(_, a)| if *a == Align::Right { "---:" } else { "---" }).collect();
        out.push_str(&format!("| {} |\n", rule.join(" | ")));
        for row in &self.rows {
            out.push_str(&format!("| {} |\n", row.iter().map(|c| escape(c)).collect::<Vec<_>>().join(" | ")));
        }
        out
    }

    /// An HTML `<table>` (escaped), for embedding in a page.
    pub fn html(&self) -> String {
        self.html_with_tokens(&[])
    }

    /// An HTML `<table>` whose columns named in `tokens` (ids, dates, durations) carry the
    /// class `token`, so that a page can keep them on one line.
    pub fn html_with_tokens(&self, tokens: &[&str]) -> String {
        let classes: Vec<String> = self
            .columns
            .iter()
            .map(|(h, align)| {
                let mut names: Vec<&str> = Vec::new();
                if *align == Align::Right {
                    names.push("num");
                }
                if tokens.contains(h) {
                    names.push("token");
                }
                if names.is_empty() { String::new() } else { format!(" class=\"{}\"", names.join(" ")) }
            })
            .collect();
        let mut out = String::from("<table>\n<thead><tr>");
        for ((h, _), class) in self.columns.iter().zip(&classes) {
            out.push_str(&format!("<th{class}>{}</th>", escape_html(h)));
        }
        out.push_str("</tr></thead>\n<tbody>\n");
        for row in &self.rows {
            out.push_str("<tr>");
            for (cell, class) in row.iter().zip(&classes) {
                out.push_str(&format!("<td{class}>{}</td>", escape_html(cell)));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody>\n</table>\n");
        out
    }

    pub fn write_csv(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let mut csv = csv::Writer::from_writer(out);
        csv.write_record(self.columns.iter().map(|(h, _)| *h))?;
        for row in &self.rows {
            csv.write_record(row.iter().map(|c| super::csv_safe(c).into_owned()))?;
        }
        csv.flush()
    }
}

/// Direction controls (overrides, embeddings, isolates, marks) let a customer's name reorder
/// the text around it ("Trojan source"); they are dropped from every output, as the PDF does.
fn is_direction_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Untrusted text (names, notes, details) made safe to print: direction controls dropped, other
/// control characters but line breaks turned into spaces.
pub fn neutralize(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| is_direction_control(c) || (c.is_control() && c != '\n');
    if !text.chars().any(unsafe_char) {
        return text.into();
    }
    text.chars()
        .filter(|&c| !is_direction_control(c))
        .map(|c| if c.is_control() && c != '\n' { ' ' } else { c })
        .collect::<String>()
        .into()
}

/// Escapes text for HTML element content and attribute values (direction controls dropped).
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().filter(|&c| !is_direction_control(c)) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A duration for people: "47m", "11h 0m", "2d 3h".
pub fn duration(ms: i64) -> String {
    let minutes = crate::analysis::outages::minutes(ms);
    match minutes {
        m if m < 60 => format!("{m}m"),
        m if m < 24 * 60 => format!("{}h {}m", m / 60, m % 60),
        m => format!("{}d {}h", m / (24 * 60), (m % (24 * 60)) / 60),
    }
}

/// The one rule for every percentage fleetprobe shows: cut (never rounded up) at the shown
/// precision, so 99.8999 % shows as 99.899 % and a missed 99.9 % target never reads as met. The
/// PDF, CSV, JSON, tables, the summary and the status page all go through here.
pub fn truncate_to(value: f64, decimals: usize) -> f64 {
    if !value.is_finite() {
        return value;
    }
    let scale = 10f64.powi(decimals as i32);
    // A tiny nudge, so 99.87 held as 99.869999... stays 99.87.
    ((value * scale) + 1e-6).floor() / scale
}

/// A share (0.9987) as a percentage ("99.870%") with `digits` decimals, cut by [`truncate_to`].
pub fn percent(share: Option<f64>, digits: usize) -> String {
    share.map_or("–".to_string(), |s| format!("{:.digits$}%", truncate_to(s * 100.0, digits)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_agree_and_escape() {
        let mut t = Table::new(&[("name", Align::Left), ("n", Align::Right)]);
        t.push(vec!["<b>a|b</b>".into(), "7".into()]);
        t.push(vec!["=cmd()".into(), "12".into()]);
        assert_eq!(t.text(40), "name         n\n<b>a|b</b>   7\n=cmd()      12\n");
        assert!(t.markdown().contains("| &lt;b&gt;a\\|b&lt;/b&gt; | 7 |"), "{}", t.markdown());
        assert!(t.html().contains("<td>&lt;b&gt;a|b&lt;/b&gt;</td><td class=\"num\">7</td>"));
        let mut csv = Vec::new();
        t.write_csv(&mut csv).unwrap();
        assert_eq!(String::from_utf8(csv).unwrap(), "name,n\n<b>a|b</b>,7\n'=cmd(),12\n");
    }

    /// A right-to-left override in a customer's name cannot reorder what follows it, in any format.
    #[test]
    fn direction_controls_are_dropped_everywhere() {
        let mut t = Table::new(&[("name", Align::Left)]);
        t.push(vec!["evil\u{202E}gnp.exe\u{2066}x\u{7}y".into()]);
        let mut csv = Vec::new();
        t.write_csv(&mut csv).unwrap();
        for out in [t.text(80), t.markdown(), t.html(), String::from_utf8(csv).unwrap()] {
            assert!(out.contains("evilgnp.exex y"), "{out}");
            assert!(!out.contains('\u{202E}') && !out.contains('\u{2066}') && !out.contains('\u{7}'), "{out:?}");
        }
        assert_eq!(escape_html("a\u{202E}<b>"), "a&lt;b&gt;");
        assert_eq!(neutralize("plain"), "plain");
    }

    #[test]
    fn durations_and_percentages() {
        assert_eq!(duration(47 * 60_000), "47m");
        assert_eq!(duration(660 * 60_000), "11h 0m");
        assert_eq!(duration((2 * 24 * 60 + 190) * 60_000), "2d 3h");
        assert_eq!(percent(Some(0.99875), 3), "99.875%");
        // Cut, never rounded up: 97.9166 % is 97.916 %, 66.666 % is 66.66 %.
        assert_eq!(percent(Some(0.979_166_6), 3), "97.916%");
        assert_eq!(percent(Some(2.0 / 3.0), 2), "66.66%");
        assert_eq!(percent(Some(0.9987), 3), "99.870%");
        assert_eq!(truncate_to(99.899_999_9, 3), 99.899);
        assert_eq!(percent(None, 2), "–");
    }
}
