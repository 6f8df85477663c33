//! Text for the SLA PDF: the embedded fonts, cleaning untrusted strings, measuring, wrapping and
//! ordering right-to-left runs. Sits under `layout` (which places what this measures) and `draw`
//! (which hands the same runs to krilla), so what is measured is exactly what is drawn.

use std::ops::Range;

use rustybuzz::{Direction, Face, UnicodeBuffer};
use unicode_bidi::BidiInfo;

static REGULAR: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
static BOLD: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans-Bold.ttf");

/// The family name inside the DejaVu files; usvg looks fonts up by it.
pub(crate) const FAMILY: &str = "DejaVu Sans";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Weight {
    Regular,
    Bold,
}

pub(crate) struct FontFace {
    shaper: Face<'static>,
    pub(crate) pdf: krilla::text::Font,
    /// Drawn in place of a character the font has no glyph for (an emoji, say).
    placeholder: char,
}

impl FontFace {
    fn new(bytes: &'static [u8]) -> Option<FontFace> {
        let shaper = Face::from_slice(bytes, 0)?;
        let pdf = krilla::text::Font::new(bytes.into(), 0)?;
        let placeholder = if shaper.glyph_index('\u{FFFD}').is_some() { '\u{FFFD}' } else { '?' };
        Some(FontFace { shaper, pdf, placeholder })
    }

    fn has_glyph(&self, c: char) -> bool {
        self.shaper.glyph_index(c).is_some()
    }

    fn units_per_em(&self) -> f32 {
        self.shaper.units_per_em().max(1) as f32
    }
}

/// DejaVu Sans regular and bold, parsed once per document.
pub(crate) struct Fonts {
    pub(crate) regular: FontFace,
    pub(crate) bold: FontFace,
}

impl Fonts {
    /// `None` only if the fonts compiled into the binary are broken, which a test rules out.
    pub(crate) fn load() -> Option<Fonts> {
        Some(Fonts { regular: FontFace::new(REGULAR)?, bold: FontFace::new(BOLD)? })
    }

    pub(crate) fn face(&self, weight: Weight) -> &FontFace {
        match weight {
            Weight::Regular => &self.regular,
            Weight::Bold => &self.bold,
        }
    }

    /// The font bytes, for usvg's font database (charts carry `font-family="sans-serif"`).
    pub(crate) fn font_data() -> [&'static [u8]; 2] {
        [REGULAR, BOLD]
    }

    /// Width in points of `text` (already cleaned) at `size`, shaped the way `draw` will draw it.
    pub(crate) fn width(&self, text: &str, weight: Weight, size: f32) -> f32 {
        visual_runs(text).iter().map(|run| self.run_width(&text[run.range.clone()], run.rtl, weight, size)).sum()
    }

    pub(crate) fn run_width(&self, text: &str, rtl: bool, weight: Weight, size: f32) -> f32 {
        let face = self.face(weight);
        let mut buffer = UnicodeBuffer::new();
        buffer.push_str(text);
        buffer.guess_segment_properties();
        buffer.set_direction(if rtl { Direction::RightToLeft } else { Direction::LeftToRight });
        let shaped = rustybuzz::shape(&face.shaper, &[], buffer);
        let units: i64 = shaped.glyph_positions().iter().map(|p| i64::from(p.x_advance)).sum();
        units as f32 / face.units_per_em() * size
    }

    /// Makes untrusted text safe to draw with `weight`: control and bidi-override characters
    /// removed, whitespace collapsed, characters the font lacks shown as one visible placeholder
    /// per run (never dropped silently), and at most `max_chars` characters kept.
    pub(crate) fn clean(&self, text: &str, weight: Weight, max_chars: usize) -> String {
        let face = self.face(weight);
        let mut out = String::with_capacity(text.len().min(max_chars * 4));
        let mut count = 0;
        let mut last_missing = false;
        let mut pending_space = false;
        for c in text.chars() {
            // A no-break space is kept: it holds "EUR 2.00" together.
            if c.is_whitespace() && c != '\u{A0}' {
                pending_space = !out.is_empty();
                last_missing = false;
                continue;
            }
            if c.is_control() || is_invisible_format(c) {
                continue;
            }
            let missing = !face.has_glyph(c);
            if missing && last_missing {
                // One placeholder for a whole emoji sequence, not one per code point.
                continue;
            }
            if count >= max_chars {
                out.push('…');
                return out;
            }
            if pending_space {
                out.push(' ');
                count += 1;
                pending_space = false;
            }
            out.push(if missing { face.placeholder } else { c });
            count += 1;
            last_missing = missing;
        }
        out
    }

    /// Breaks cleaned `text` into lines no wider than `max_width`: at spaces where it can, inside
    /// a word when the word alone is wider than the column.
    pub(crate) fn wrap(&self, text: &str, weight: Weight, size: f32, max_width: f32) -> Vec<String> {
        let mut lines = Vec::new();
        let mut line = String::new();
        for word in text.split(' ').filter(|w| !w.is_empty()) {
            let candidate = if line.is_empty() { word.to_string() } else { format!("{line} {word}") };
            if self.width(&candidate, weight, size) <= max_width {
                line = candidate;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            if self.width(word, weight, size) <= max_width {
                line = word.to_string();
                continue;
            }
            // A word wider than the column: break it after a '.', '-' or '/' where one is close
            // enough (hostnames, incident ids), or wherever it has to be.
            let mut rest = word;
            while !rest.is_empty() && self.width(rest, weight, size) > max_width {
                let mut fit = 0;
                for (i, _) in rest.char_indices().skip(1) {
                    if self.width(&rest[..i], weight, size) > max_width {
                        break;
                    }
                    fit = i;
                }
                if fit == 0 {
                    fit = rest.chars().next().map_or(rest.len(), char::len_utf8);
                }
                let head = &rest[..fit];
                // After a separator when that leaves the rest on one line ("fra-1-" /
                // "20261014T0800"), or when the separator is far enough along; else where it must.
                let cut = match head.rfind(['.', '-', '/', '_', '@']) {
                    Some(at) if at + 1 < fit && self.width(&rest[at + 1..], weight, size) <= max_width => at + 1,
                    Some(at) if at + 1 >= fit / 2 && at + 1 < fit => at + 1,
                    _ => fit,
                };
                lines.push(rest[..cut].to_string());
                rest = &rest[cut..];
            }
            line = rest.to_string();
        }
        if !line.is_empty() || lines.is_empty() {
            lines.push(line);
        }
        lines
    }
}

/// Zero-width and direction-override characters: drawn as nothing by a font at best, and the
/// overrides could reorder a name into something else ("Trojan source"), so they go.
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}'
        | '\u{1F3FB}'..='\u{1F3FF}' | '\u{E0000}'..='\u{E0FFF}')
}

/// A stretch of text in one direction, in the order it appears on the line (left to right).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Run {
    pub(crate) range: Range<usize>,
    pub(crate) rtl: bool,
}

/// Splits one line into directional runs in visual order (Unicode bidi algorithm), so Hebrew or
/// Arabic inside a line reads right to left while the line itself stays in place.
pub(crate) fn visual_runs(text: &str) -> Vec<Run> {
    if text.is_empty() {
        return Vec::new();
    }
    let bidi = BidiInfo::new(text, None);
    if !bidi.has_rtl() {
        return vec![Run { range: 0..text.len(), rtl: false }];
    }
    let mut runs = Vec::new();
    for paragraph in &bidi.paragraphs {
        let (levels, ranges) = bidi.visual_runs(paragraph, paragraph.range.clone());
        for range in ranges {
            let rtl = levels.get(range.start).is_some_and(|level| level.is_rtl());
            runs.push(Run { range, rtl });
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fonts() -> Fonts {
        Fonts::load().expect("embedded fonts parse")
    }

    #[test]
    fn control_characters_and_overrides_are_removed() {
        let f = fonts();
        assert_eq!(f.clean("a\u{0}b\u{7}c\u{202E}d", Weight::Regular, 100), "abcd");
        assert_eq!(f.clean("  two\n\tlines  ", Weight::Regular, 100), "two lines");
        assert_eq!(f.clean("", Weight::Regular, 100), "");
    }

    #[test]
    fn missing_glyphs_become_one_visible_placeholder() {
        let f = fonts();
        // A family emoji is several code points joined by ZWJ: one placeholder for all of it.
        let cleaned = f.clean("Shop 👨\u{200D}👩\u{200D}👧 ok 🚀", Weight::Regular, 100);
        assert_eq!(cleaned, "Shop \u{FFFD} ok \u{FFFD}");
    }

    #[test]
    fn long_text_is_cut_with_an_ellipsis() {
        let f = fonts();
        let cleaned = f.clean(&"x".repeat(500), Weight::Regular, 10);
        assert_eq!(cleaned, format!("{}…", "x".repeat(10)));
    }

    #[test]
    fn wrapping_respects_the_width_and_breaks_long_words() {
        let f = fonts();
        let lines = f.wrap("alpha beta gamma delta", Weight::Regular, 10.0, 60.0);
        assert!(lines.len() > 1, "{lines:?}");
        let long = "x".repeat(80);
        let lines = f.wrap(&long, Weight::Regular, 10.0, 50.0);
        assert!(lines.len() > 3);
        assert_eq!(lines.concat(), long);
        for line in &lines {
            assert!(f.width(line, Weight::Regular, 10.0) <= 50.0);
        }
        assert_eq!(f.wrap("", Weight::Regular, 10.0, 50.0), vec![String::new()]);
        let lines = f.wrap("alpenrose-catering-and-events.example", Weight::Regular, 10.0, 150.0);
        assert_eq!(lines.concat(), "alpenrose-catering-and-events.example");
        assert!(lines.len() == 2 && lines[0].ends_with(['.', '-']), "breaks after a separator: {lines:?}");
        // An incident id too wide for its column breaks at its last hyphen, never inside the stamp.
        let id = "fra-1-20261014T0800";
        let width = f.width("20261014T0800", Weight::Regular, 8.5) + 1.0;
        assert_eq!(f.wrap(id, Weight::Regular, 8.5, width), vec!["fra-1-", "20261014T0800"]);
    }

    #[test]
    fn right_to_left_runs_are_found() {
        let runs = visual_runs("Shop שלום 42");
        assert!(runs.iter().any(|r| r.rtl), "{runs:?}");
        assert_eq!(visual_runs("plain"), vec![Run { range: 0..5, rtl: false }]);
    }

    #[test]
    fn digits_are_all_the_same_width() {
        // Right-aligned figures line up only if DejaVu's digits are tabular.
        let f = fonts();
        let w = f.width("0", Weight::Regular, 10.0);
        for d in "123456789".chars() {
            assert!((f.width(&d.to_string(), Weight::Regular, 10.0) - w).abs() < 0.001);
        }
    }
}
