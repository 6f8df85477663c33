//! Drawing laid-out pages with krilla: text in the embedded, subset DejaVu fonts (selectable, so
//! `pdftotext` reads every figure back), charts and an SVG logo as vectors through usvg and
//! krilla-svg, then the running header and "Page i of n" footer on every page. Last step of
//! `render_sla_pdf`.

use std::sync::{Arc, OnceLock};

use krilla::Document;
use krilla::color::rgb;
use krilla::geom::{PathBuilder, Point, Rect, Size, Transform};
use krilla::image::Image;
use krilla::metadata::Metadata;
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke};
use krilla::text::TextDirection;
use krilla_svg::{SurfaceExt, SvgSettings};

use super::branding::{Branding, Logo, Rgb, fill};
use super::layout::{Align, CONTENT_BOTTOM, CONTENT_TOP, Flow, Item, MARGIN_X, PAGE_HEIGHT, PAGE_WIDTH, Style};
use super::text::{FAMILY, Fonts, Weight, visual_runs};
use super::{PdfError, SlaDocument};

/// Parsed charts and logo, ready to measure (layout) and to draw.
pub(crate) struct Assets {
    charts: Vec<usvg::Tree>,
    logo: Option<LogoAsset>,
}

enum LogoAsset {
    Svg(Box<usvg::Tree>),
    Png(Image),
}

/// usvg options whose font database holds DejaVu Sans under every generic family: without it,
/// the charts' `<text font-family="sans-serif">` silently disappears. The database is built once
/// and shared, since a batch renders a PDF per customer.
fn svg_options() -> usvg::Options<'static> {
    static FONTDB: OnceLock<Arc<usvg::fontdb::Database>> = OnceLock::new();
    let fontdb = FONTDB.get_or_init(|| {
        let mut db = usvg::fontdb::Database::new();
        for data in Fonts::font_data() {
            db.load_font_data(data.to_vec());
        }
        db.set_sans_serif_family(FAMILY);
        db.set_serif_family(FAMILY);
        db.set_monospace_family(FAMILY);
        Arc::new(db)
    });
    usvg::Options { font_family: FAMILY.to_string(), fontdb: fontdb.clone(), ..usvg::Options::default() }
}

impl Assets {
    pub(crate) fn prepare(doc: &SlaDocument, branding: &Branding) -> Result<Assets, PdfError> {
        let options = svg_options();
        let charts = doc
            .charts
            .iter()
            .enumerate()
            .map(|(index, chart)| {
                usvg::Tree::from_str(&chart.svg, &options).map_err(|e| PdfError::Chart {
                    index,
                    title: chart.title.clone(),
                    message: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let logo = match &branding.logo {
            None => None,
            Some(Logo::Svg(text)) => Some(LogoAsset::Svg(Box::new(
                usvg::Tree::from_str(text, &options).map_err(|e| PdfError::Logo(e.to_string()))?,
            ))),
            Some(Logo::Png(bytes)) => {
                Some(LogoAsset::Png(Image::from_png(bytes.clone().into(), true).map_err(PdfError::Logo)?))
            }
        };
        Ok(Assets { charts, logo })
    }

    /// The chart scaled to `width`, its height capped so it never needs more than half a page.
    pub(crate) fn chart_size(&self, index: usize, width: f32) -> (f32, f32) {
        let Some(tree) = self.charts.get(index) else { return (width, 0.0) };
        let size = tree.size();
        let ratio = size.height() / size.width().max(1.0);
        let max_height = (CONTENT_BOTTOM - CONTENT_TOP) / 2.0;
        let height = (width * ratio).min(max_height);
        (height / ratio.max(f32::EPSILON), height)
    }

    /// The logo fitted into a box, keeping its proportions.
    pub(crate) fn logo_size(&self, max_width: f32, max_height: f32) -> Option<(f32, f32)> {
        let (width, height) = match self.logo.as_ref()? {
            LogoAsset::Svg(tree) => (tree.size().width(), tree.size().height()),
            LogoAsset::Png(image) => {
                let (w, h) = image.size();
                (w as f32, h as f32)
            }
        };
        if width <= 0.0 || height <= 0.0 {
            return None;
        }
        let scale = (max_width / width).min(max_height / height);
        Some((width * scale, height * scale))
    }
}

fn colour(c: Rgb) -> rgb::Color {
    rgb::Color::new(c.0, c.1, c.2)
}

pub(crate) fn draw(
    pages: &[Vec<Item>],
    doc: &SlaDocument,
    branding: &Branding,
    fonts: &Fonts,
    assets: &Assets,
) -> Result<Vec<u8>, PdfError> {
    let mut document = Document::new();
    let title = format!("{} — {} — {}", branding.phrases.document_title, doc.customer_name, doc.period_label);
    document.set_metadata(
        Metadata::new()
            .title(fonts.clean(&title, Weight::Regular, 300))
            .authors(vec![fonts.clean(&branding.provider_name, Weight::Regular, 160)])
            .creator(format!("fleetprobe {}", env!("CARGO_PKG_VERSION")))
            .language(branding.language.clone()),
    );
    let page_settings = PageSettings::from_wh(PAGE_WIDTH, PAGE_HEIGHT).ok_or(PdfError::Pdf("page size".into()))?;
    let count = pages.len();
    for (index, items) in pages.iter().enumerate() {
        let mut chrome = Flow::new(fonts);
        page_chrome(&mut chrome, doc, branding, index + 1, count);
        let mut page = document.start_page_with(page_settings.clone());
        let mut surface = page.surface();
        for item in items.iter().chain(chrome.pages.iter().flatten()) {
            draw_item(&mut surface, item, fonts, assets);
        }
        surface.finish();
        page.finish();
    }
    document.finish().map_err(|e| PdfError::Pdf(e.to_string()))
}

/// The footer of every page (address lines, "Page i of n") and, after the first, a running
/// header naming the customer and period.
fn page_chrome(flow: &mut Flow, doc: &SlaDocument, branding: &Branding, page: usize, pages: usize) {
    let fonts = flow.fonts;
    let muted = Style { size: 7.5, weight: Weight::Regular, colour: branding.colours.muted };
    let (left, right) = (MARGIN_X, PAGE_WIDTH - MARGIN_X);
    let footer_top = CONTENT_BOTTOM + 20.0;
    flow.rule(footer_top, 0.6, branding.colours.rule);
    let page_of = fill(&branding.phrases.page_of, &[("page", &page.to_string()), ("pages", &pages.to_string())]);
    let page_of = fonts.clean(&page_of, Weight::Regular, 60);
    flow.text_at(right, footer_top + 13.0, Align::Right, muted, &page_of);
    let footer_width = right - left - fonts.width(&page_of, Weight::Regular, muted.size) - 24.0;
    let mut lines = vec![fonts.clean(&branding.provider_name, Weight::Regular, 160)];
    lines.extend(branding.footer.iter().map(|line| fonts.clean(line, Weight::Regular, 300)));
    let mut baseline = footer_top + 13.0;
    for line in lines.iter().filter(|l| !l.is_empty()).take(4) {
        let line = fonts.wrap(line, Weight::Regular, muted.size, footer_width).into_iter().next().unwrap_or_default();
        flow.text_at(left, baseline, Align::Left, muted, &line);
        baseline += muted.line_height();
    }

    if page > 1 {
        let half = (right - left) / 2.0 - 12.0;
        let header_y = CONTENT_TOP - 26.0;
        let title = format!("{} · {}", branding.provider_name, branding.phrases.document_title);
        let title = fonts.clean(&title, Weight::Regular, 200);
        let first =
            |text: &str| fonts.wrap(text, Weight::Regular, muted.size, half).into_iter().next().unwrap_or_default();
        flow.text_at(left, header_y, Align::Left, muted, &first(&title));
        let customer = format!("{} · {}", doc.customer_name, doc.period_label);
        let customer = fonts.clean(&customer, Weight::Regular, 200);
        flow.text_at(right, header_y, Align::Right, muted, &first(&customer));
        flow.rule(header_y + 7.0, 0.6, branding.colours.rule);
    }
}

fn draw_item(surface: &mut krilla::surface::Surface, item: &Item, fonts: &Fonts, assets: &Assets) {
    match item {
        Item::Text { x, y, size, weight, colour: c, text } => {
            surface.set_fill(Some(Fill { paint: colour(*c).into(), ..Fill::default() }));
            surface.set_stroke(None);
            let font = &fonts.face(*weight).pdf;
            let mut x = *x;
            for run in visual_runs(text) {
                let part = &text[run.range.clone()];
                let direction = if run.rtl { TextDirection::RightToLeft } else { TextDirection::LeftToRight };
                surface.draw_text(Point::from_xy(x, *y), font.clone(), *size, part, false, direction);
                x += fonts.run_width(part, run.rtl, *weight, *size);
            }
        }
        Item::Rect { x, y, width, height, fill } => {
            if let Some(rect) = Rect::from_xywh(*x, *y, *width, *height) {
                let mut path = PathBuilder::new();
                path.push_rect(rect);
                if let Some(path) = path.finish() {
                    surface.set_fill(Some(Fill { paint: colour(*fill).into(), ..Fill::default() }));
                    surface.set_stroke(None);
                    surface.draw_path(&path);
                }
            }
        }
        Item::Line { x1, y1, x2, y2, width, colour: c } => {
            let mut path = PathBuilder::new();
            path.move_to(*x1, *y1);
            path.line_to(*x2, *y2);
            if let Some(path) = path.finish() {
                surface.set_fill(None);
                surface.set_stroke(Some(Stroke { paint: colour(*c).into(), width: *width, ..Stroke::default() }));
                surface.draw_path(&path);
            }
        }
        Item::Chart { index, x, y, width, height } => {
            if let (Some(tree), Some(size)) = (assets.charts.get(*index), Size::from_wh(*width, *height)) {
                surface.push_transform(&Transform::from_translate(*x, *y));
                surface.draw_svg(tree, size, SvgSettings::default());
                surface.pop();
            }
        }
        Item::Logo { x, y, width, height } => {
            let Some(size) = Size::from_wh(*width, *height) else { return };
            surface.push_transform(&Transform::from_translate(*x, *y));
            match &assets.logo {
                Some(LogoAsset::Svg(tree)) => {
                    surface.draw_svg(tree, size, SvgSettings::default());
                }
                Some(LogoAsset::Png(image)) => surface.draw_image(image.clone(), size),
                None => {}
            }
            surface.pop();
        }
    }
}
