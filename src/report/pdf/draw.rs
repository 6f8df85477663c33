//! Drawing laid-out pages with krilla: text in the embedded, subset DejaVu fonts (selectable, so
//! `pdftotext` reads every figure back), charts and an SVG logo as vectors through usvg and
//! krilla-svg, then the running header and "Page i of n" footer on every page. Last step of
//! `render_sla_pdf`.

use std::sync::{Arc, OnceLock};

use std::num::NonZeroU16;

use krilla::color::rgb;
use krilla::configure::{Accessibility, ConfigurationBuilder};
use krilla::destination::XyzDestination;
use krilla::geom::{PathBuilder, Point, Rect, Size, Transform};
use krilla::image::Image;
use krilla::metadata::Metadata;
use krilla::outline::{Outline, OutlineNode};
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke};
use krilla::surface::Surface;
use krilla::tagging::{
    Artifact, ArtifactType, ContentTag, Identifier, SpanTag, TableHeaderScope, Tag, TagGroup, TagKind, TagTree,
};
use krilla::text::TextDirection;
use krilla::{Document, SerializeSettings};
use krilla_svg::{SurfaceExt, SvgSettings};

use super::branding::{Branding, Logo, Rgb, fill};
use super::layout::{
    Align, CONTENT_BOTTOM, CONTENT_TOP, Flow, Item, MARGIN_X, Node, PAGE_HEIGHT, PAGE_WIDTH, Role, Style,
};
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
    structure: &[Node],
    doc: &SlaDocument,
    branding: &Branding,
    fonts: &Fonts,
    assets: &Assets,
) -> Result<Vec<u8>, PdfError> {
    // PDF/UA-1: krilla refuses to write the file unless it has a title (shown as the window
    // title), a language, an outline, alternative text on every figure and a title on every
    // heading, and every glyph maps to a character.
    let configuration = ConfigurationBuilder::new()
        .with_accessibility_validator(Accessibility::UA1)
        .finish()
        .map_err(|e| PdfError::Pdf(format!("PDF/UA configuration: {e:?}")))?;
    let mut document =
        Document::new_with(SerializeSettings { configuration, enable_tagging: true, ..SerializeSettings::default() });
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
    let mut tagged = Tagged::new(structure.len());
    for (index, items) in pages.iter().enumerate() {
        let mut chrome = Flow::new(fonts);
        page_chrome(&mut chrome, doc, branding, index + 1, count);
        let mut page = document.start_page_with(page_settings.clone());
        let mut surface = page.surface();
        for item in items {
            tagged.draw(&mut surface, index, item, None, fonts, assets);
        }
        for item in chrome.pages.iter().flatten() {
            let running = if item_y(item) < CONTENT_TOP { ArtifactType::Header } else { ArtifactType::Footer };
            tagged.draw(&mut surface, index, item, Some(running), fonts, assets);
        }
        surface.finish();
        page.finish();
    }
    let (tree, outline) = tagged.finish(structure, &branding.language);
    document.set_tag_tree(tree);
    document.set_outline(outline);
    document.finish().map_err(|e| PdfError::Pdf(format!("{e:?}")))
}

/// Where an item sits vertically: enough to tell the running header from the footer.
fn item_y(item: &Item) -> f32 {
    match item {
        Item::Text { y, .. } | Item::Rect { y, .. } | Item::Chart { y, .. } | Item::Logo { y, .. } => *y,
        Item::Line { y1, .. } => *y1,
    }
}

/// The marked content drawn for each structure node, and where each node first appears (for
/// the outline), gathered while the pages are drawn.
struct Tagged {
    leaves: Vec<Vec<Identifier>>,
    first: Vec<Option<(usize, f32)>>,
}

impl Tagged {
    fn new(nodes: usize) -> Self {
        Tagged { leaves: vec![Vec::new(); nodes], first: vec![None; nodes] }
    }

    /// Draws `item` marked as content of its node, or as an artifact of kind `artifact` (page
    /// furniture) when given; decoration without a node is a layout artifact, and text without
    /// one is a table header repeated on a later page.
    fn draw(
        &mut self,
        surface: &mut Surface,
        page: usize,
        item: &Item,
        artifact: Option<ArtifactType>,
        fonts: &Fonts,
        assets: &Assets,
    ) {
        let node = match item {
            Item::Text { node, .. } | Item::Chart { node, .. } => *node,
            _ => None,
        }
        .filter(|n| artifact.is_none() && *n < self.leaves.len());
        let Some(node) = node else {
            let kind = artifact.unwrap_or(match item {
                Item::Text { .. } => ArtifactType::PaginationOther,
                _ => ArtifactType::Layout,
            });
            surface.start_tagged(ContentTag::Artifact(Artifact::with_kind(kind)));
            draw_item(surface, item, fonts, assets);
            surface.end_tagged();
            return;
        };
        let tag = match item {
            Item::Text { .. } => ContentTag::Span(SpanTag::empty()),
            _ => ContentTag::Other,
        };
        let id = surface.start_tagged(tag);
        draw_item(surface, item, fonts, assets);
        surface.end_tagged();
        self.leaves[node].push(id);
        if self.first[node].is_none() {
            let top = match item {
                Item::Text { y, size, .. } => y - size,
                _ => item_y(item),
            };
            self.first[node] = Some((page, top));
        }
    }

    /// The structure tree in reading order, and an outline of the headings (PDF/UA wants both).
    fn finish(mut self, structure: &[Node], language: &str) -> (TagTree, Outline) {
        let mut children = vec![Vec::new(); structure.len()];
        let mut tree = TagTree::new().with_lang(Some(language.to_string()));
        let mut roots = Vec::new();
        for (index, node) in structure.iter().enumerate() {
            match node.parent.filter(|p| *p < index) {
                Some(parent) => children[parent].push(index),
                None => roots.push(index),
            }
        }
        fn group(
            index: usize,
            structure: &[Node],
            children: &[Vec<usize>],
            leaves: &mut [Vec<Identifier>],
        ) -> TagGroup {
            let tag: TagKind = match &structure[index].role {
                Role::Heading { level, title } => {
                    Tag::Hn(NonZeroU16::new(*level).unwrap_or(NonZeroU16::MIN), Some(title.clone())).into()
                }
                Role::Paragraph => Tag::P.into(),
                Role::Table => Tag::Table.into(),
                Role::Row => Tag::TR.into(),
                Role::HeaderCell => Tag::TH(TableHeaderScope::Column).into(),
                Role::Cell => Tag::TD.into(),
                Role::Figure { alt } => Tag::Figure(Some(alt.clone())).into(),
            };
            let mut tag_group = TagGroup::new(tag);
            for id in std::mem::take(&mut leaves[index]) {
                tag_group.push(id);
            }
            for child in &children[index] {
                tag_group.push(group(*child, structure, children, leaves));
            }
            tag_group
        }
        let mut outline = Outline::new();
        let mut current_h1: Option<OutlineNode> = None;
        for &root in &roots {
            if let (Role::Heading { level, title }, Some((page, y))) = (&structure[root].role, self.first[root]) {
                let entry = OutlineNode::new(title.clone(), XyzDestination::new(page, Point::from_xy(0.0, y.max(0.0))));
                if *level <= 1 {
                    if let Some(done) = current_h1.replace(entry) {
                        outline.push_child(done);
                    }
                } else if let Some(h1) = current_h1.as_mut() {
                    h1.push_child(entry);
                } else {
                    outline.push_child(entry);
                }
            }
            tree.push(group(root, structure, &children, &mut self.leaves));
        }
        if let Some(h1) = current_h1 {
            outline.push_child(h1.with_open(true));
        }
        (tree, outline)
    }
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

fn draw_item(surface: &mut Surface, item: &Item, fonts: &Fonts, assets: &Assets) {
    match item {
        Item::Text { x, y, size, weight, colour: c, text, .. } => {
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
        Item::Chart { index, x, y, width, height, .. } => {
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
