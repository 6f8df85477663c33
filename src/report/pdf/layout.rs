//! Page layout for the SLA PDF, since krilla places glyphs but lays nothing out: a flow of blocks
//! down A4 pages with margins, page breaks, tables whose header repeats on every page, and text
//! aligned by measured width. `content` feeds it; `draw` turns the finished pages into PDF,
//! which is why every page is laid out before any is drawn ("Page i of n" needs n).

use super::branding::Rgb;
use super::text::{Fonts, Weight};

pub(crate) const PAGE_WIDTH: f32 = 595.28;
pub(crate) const PAGE_HEIGHT: f32 = 841.89;
pub(crate) const MARGIN_X: f32 = 54.0;
/// Content starts here; the running header of later pages sits above it.
pub(crate) const CONTENT_TOP: f32 = 64.0;
/// Content ends here; the footer sits below it.
pub(crate) const CONTENT_BOTTOM: f32 = PAGE_HEIGHT - 78.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Align {
    Left,
    Right,
}

/// What a piece of the document is to a reader, for the PDF's structure tree (tagged PDF):
/// screen readers and text reflow follow these, not the drawing order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Role {
    /// A heading of `level` (1 is the document title); `title` is its text.
    Heading {
        level: u16,
        title: String,
    },
    Paragraph,
    Table,
    Row,
    HeaderCell,
    Cell,
    /// A chart, with a text alternative saying what it shows.
    Figure {
        alt: String,
    },
}

/// One element of the structure tree; `parent` is an earlier node (a cell's row, a row's table).
/// Nodes are kept in reading order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub(crate) role: Role,
    pub(crate) parent: Option<usize>,
}

/// One thing drawn on a page; coordinates in points from the top-left corner, y grows down.
/// Text and charts name the structure node they belong to; `None` marks decoration (an artifact
/// to assistive technology), as are all rules and fills.
#[derive(Debug, Clone)]
pub(crate) enum Item {
    /// `y` is the baseline; `text` is cleaned and fits where it was placed.
    Text {
        x: f32,
        y: f32,
        size: f32,
        weight: Weight,
        colour: Rgb,
        text: String,
        node: Option<usize>,
    },
    Rect {
        x: f32,
        y: f32,
        width: f32,
        height: f32,
        fill: Rgb,
    },
    Line {
        x1: f32,
        y1: f32,
        x2: f32,
        y2: f32,
        width: f32,
        colour: Rgb,
    },
    /// The `index`th chart of the document, scaled into the box.
    Chart {
        index: usize,
        x: f32,
        y: f32,
        width: f32,
        height: f32,
        node: Option<usize>,
    },
    Logo {
        x: f32,
        y: f32,
        width: f32,
        height: f32,
    },
}

/// A text style: size, weight, colour, and the distance between baselines.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Style {
    pub(crate) size: f32,
    pub(crate) weight: Weight,
    pub(crate) colour: Rgb,
}

impl Style {
    pub(crate) fn line_height(&self) -> f32 {
        self.size * 1.35
    }

    /// From the top of a line box to its baseline.
    pub(crate) fn ascent(&self) -> f32 {
        self.size * 0.98
    }
}

/// Blocks flowing down pages.
pub(crate) struct Flow<'f> {
    pub(crate) fonts: &'f Fonts,
    pub(crate) pages: Vec<Vec<Item>>,
    /// Top of the free space on the current page.
    pub(crate) y: f32,
    /// The structure tree, in reading order.
    pub(crate) nodes: Vec<Node>,
    /// The node text placed now belongs to; `None` places decoration.
    pub(crate) current: Option<usize>,
}

impl<'f> Flow<'f> {
    pub(crate) fn new(fonts: &'f Fonts) -> Self {
        Flow { fonts, pages: vec![Vec::new()], y: CONTENT_TOP, nodes: Vec::new(), current: None }
    }

    /// Adds a structure node under `parent` and returns its index.
    pub(crate) fn node(&mut self, role: Role, parent: Option<usize>) -> usize {
        self.nodes.push(Node { role, parent });
        self.nodes.len() - 1
    }

    /// Places what `draw` places as one new top-level node of `role` (a paragraph, a heading).
    pub(crate) fn tagged<R>(&mut self, role: Role, draw: impl FnOnce(&mut Self) -> R) -> R {
        let node = self.node(role, None);
        let outer = self.current.replace(node);
        let result = draw(self);
        self.current = outer;
        result
    }

    pub(crate) fn left(&self) -> f32 {
        MARGIN_X
    }

    pub(crate) fn right(&self) -> f32 {
        PAGE_WIDTH - MARGIN_X
    }

    pub(crate) fn width(&self) -> f32 {
        self.right() - self.left()
    }

    pub(crate) fn push(&mut self, item: Item) {
        if let Some(page) = self.pages.last_mut() {
            page.push(item);
        }
    }

    pub(crate) fn new_page(&mut self) {
        self.pages.push(Vec::new());
        self.y = CONTENT_TOP;
    }

    /// Starts a new page unless `height` more points fit on this one. A block taller than a
    /// whole page is drawn anyway, from the top of a fresh page.
    pub(crate) fn need(&mut self, height: f32) {
        if self.y + height > CONTENT_BOTTOM && self.y > CONTENT_TOP {
            self.new_page();
        }
    }

    pub(crate) fn space(&mut self, height: f32) {
        self.y += height;
    }

    /// One line of cleaned text with its baseline at `y`, aligned against `x` (its left edge, or
    /// its right edge for `Align::Right`).
    pub(crate) fn text_at(&mut self, x: f32, y: f32, align: Align, style: Style, text: &str) {
        if text.is_empty() {
            return;
        }
        let x = match align {
            Align::Left => x,
            Align::Right => x - self.fonts.width(text, style.weight, style.size),
        };
        self.push(Item::Text {
            x,
            y,
            size: style.size,
            weight: style.weight,
            colour: style.colour,
            text: text.to_string(),
            node: self.current,
        });
    }

    /// A paragraph of cleaned text wrapped to `width`, starting at the flow's `y`, breaking pages
    /// between lines.
    pub(crate) fn paragraph(&mut self, x: f32, width: f32, style: Style, text: &str) {
        self.tagged(Role::Paragraph, |flow| {
            for line in flow.fonts.wrap(text, style.weight, style.size, width) {
                flow.need(style.line_height());
                let baseline = flow.y + style.ascent();
                flow.text_at(x, baseline, Align::Left, style, &line);
                flow.y += style.line_height();
            }
        });
    }

    pub(crate) fn rule(&mut self, y: f32, width: f32, colour: Rgb) {
        let (x1, x2) = (self.left(), self.right());
        self.push(Item::Line { x1, y1: y, x2, y2: y, width, colour });
    }
}

/// A table column: its title, its share of the table's width, and how its cells align.
pub(crate) struct Column {
    pub(crate) title: String,
    pub(crate) share: f32,
    pub(crate) align: Align,
}

pub(crate) struct TableStyle {
    pub(crate) header: Style,
    pub(crate) body: Style,
    pub(crate) header_fill: Rgb,
    pub(crate) stripe: Rgb,
    pub(crate) rule: Rgb,
}

const CELL_PAD_X: f32 = 5.0;
const CELL_PAD_Y: f32 = 4.5;

/// Draws a table at the flow's `y`; cells are cleaned text and wrap inside their column. When a
/// row does not fit, the table goes on on a new page under a repeated header.
pub(crate) fn table(flow: &mut Flow, columns: &[Column], rows: &[Vec<String>], style: &TableStyle) {
    let total_share: f32 = columns.iter().map(|c| c.share).sum::<f32>().max(f32::EPSILON);
    let mut xs = Vec::with_capacity(columns.len());
    let mut x = flow.left();
    for column in columns {
        let width = column.share / total_share * flow.width();
        xs.push((x, width));
        x += width;
    }
    let inner = |width: f32| width - 2.0 * CELL_PAD_X;
    let wrap_row = |flow: &Flow, cells: &[String], styles: &[Style]| -> Vec<Vec<String>> {
        xs.iter()
            .zip(styles)
            .enumerate()
            .map(|(i, ((_, width), s))| {
                let text = cells.get(i).map(String::as_str).unwrap_or("");
                flow.fonts.wrap(text, s.weight, s.size, inner(*width))
            })
            .collect()
    };
    let row_height = |lines: &[Vec<String>], styles: &[Style]| {
        lines.iter().zip(styles).map(|(l, s)| l.len() as f32 * s.line_height()).fold(0.0, f32::max) + 2.0 * CELL_PAD_Y
    };

    // A header word never breaks: a title too wide for its column gets a smaller size instead.
    let header_styles: Vec<Style> = columns
        .iter()
        .zip(&xs)
        .map(|(column, (_, width))| {
            let mut s = style.header;
            let widest =
                |s: &Style| column.title.split(' ').map(|w| flow.fonts.width(w, s.weight, s.size)).fold(0.0, f32::max);
            while s.size > 5.5 && widest(&s) > inner(*width) {
                s.size -= 0.25;
            }
            s
        })
        .collect();
    let body_styles = vec![style.body; columns.len()];
    let titles: Vec<String> = columns.iter().map(|c| c.title.clone()).collect();
    let header_lines = wrap_row(flow, &titles, &header_styles);
    let header_height = row_height(&header_lines, &header_styles);

    // Cells are tagged TH or TD in a row of the table; `row` is `None` for a header repeated on a
    // later page, which is pagination, not content.
    let table_node = flow.node(Role::Table, None);
    let draw_row = |flow: &mut Flow,
                    lines: &[Vec<String>],
                    styles: &[Style],
                    height: f32,
                    fill: Option<Rgb>,
                    row: Option<(usize, Role)>| {
        let top = flow.y;
        if let Some(fill) = fill {
            flow.push(Item::Rect { x: flow.left(), y: top, width: flow.width(), height, fill });
        }
        for (((column, (x, width)), cell), s) in columns.iter().zip(&xs).zip(lines).zip(styles) {
            flow.current = row.as_ref().map(|(row, role)| flow.node(role.clone(), Some(*row)));
            for (i, line) in cell.iter().enumerate() {
                let baseline = top + CELL_PAD_Y + i as f32 * s.line_height() + s.ascent();
                match column.align {
                    Align::Left => flow.text_at(x + CELL_PAD_X, baseline, Align::Left, *s, line),
                    Align::Right => flow.text_at(x + width - CELL_PAD_X, baseline, Align::Right, *s, line),
                }
            }
        }
        flow.current = None;
        flow.y = top + height;
        let (x1, x2, y) = (flow.left(), flow.right(), flow.y);
        flow.push(Item::Line { x1, y1: y, x2, y2: y, width: 0.5, colour: style.rule });
    };

    let mut header_on_page = false;
    let mut header_tagged = false;
    for (index, row) in rows.iter().enumerate() {
        let lines = wrap_row(flow, row, &body_styles);
        let height = row_height(&lines, &body_styles);
        // Never leave a header alone at the bottom of a page.
        if !header_on_page {
            flow.need(header_height + height);
        } else if flow.y + height > CONTENT_BOTTOM {
            flow.new_page();
            header_on_page = false;
        }
        if !header_on_page {
            let header_row = (!header_tagged).then(|| (flow.node(Role::Row, Some(table_node)), Role::HeaderCell));
            draw_row(flow, &header_lines, &header_styles, header_height, Some(style.header_fill), header_row);
            header_on_page = true;
            header_tagged = true;
        }
        let fill = (index % 2 == 1).then_some(style.stripe);
        let body_row = (flow.node(Role::Row, Some(table_node)), Role::Cell);
        draw_row(flow, &lines, &body_styles, height, fill, Some(body_row));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn style() -> TableStyle {
        let body = Style { size: 9.0, weight: Weight::Regular, colour: Rgb(0, 0, 0) };
        TableStyle {
            header: Style { weight: Weight::Bold, ..body },
            body,
            header_fill: Rgb(200, 200, 200),
            stripe: Rgb(240, 240, 240),
            rule: Rgb(100, 100, 100),
        }
    }

    fn texts(page: &[Item]) -> Vec<&str> {
        page.iter()
            .filter_map(|item| match item {
                Item::Text { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn long_tables_break_pages_and_repeat_the_header() {
        let fonts = Fonts::load().expect("fonts");
        let mut flow = Flow::new(&fonts);
        let columns = [
            Column { title: "Site".into(), share: 3.0, align: Align::Left },
            Column { title: "Minutes".into(), share: 1.0, align: Align::Right },
        ];
        let rows: Vec<Vec<String>> = (0..120).map(|i| vec![format!("site-{i}"), i.to_string()]).collect();
        table(&mut flow, &columns, &rows, &style());
        assert!(flow.pages.len() >= 3, "{} pages", flow.pages.len());
        for page in &flow.pages {
            assert_eq!(texts(page).first(), Some(&"Site"), "every page starts with the header");
            for item in page {
                if let Item::Text { y, .. } = item {
                    assert!(*y <= CONTENT_BOTTOM && *y >= CONTENT_TOP, "text at {y} outside the content area");
                }
            }
        }
        let all: Vec<&str> = flow.pages.iter().flat_map(|p| texts(p)).collect();
        assert!(all.contains(&"site-119"));
    }

    #[test]
    fn numbers_align_on_their_right_edge() {
        let fonts = Fonts::load().expect("fonts");
        let mut flow = Flow::new(&fonts);
        let s = style().body;
        flow.text_at(300.0, 100.0, Align::Right, s, "1");
        flow.text_at(300.0, 112.0, Align::Right, s, "1234.5");
        let rights: Vec<f32> = flow.pages[0]
            .iter()
            .filter_map(|item| match item {
                Item::Text { x, text, size, weight, .. } => Some(x + fonts.width(text, *weight, *size)),
                _ => None,
            })
            .collect();
        assert_eq!(rights.len(), 2);
        assert!(rights.iter().all(|r| (r - 300.0).abs() < 0.01), "{rights:?}");
    }
}
