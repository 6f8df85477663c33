//! One model per report, rendered in the format asked for. Each report builds its model from
//! plain values (the fleet, an analysed period, the store's histograms) and implements
//! [`Render`]; [`render`] is the one place that picks the renderer for a [`Format`].

use std::io::{self, Write};

use serde::Serialize;

use super::table::Table;

/// Output formats shared by the tabular reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns for a terminal.
    Table,
    Csv,
    Json,
    Markdown,
    Html,
}

/// The renderers of a report's model. CSV, Markdown and HTML default to the model's main
/// [`table`](Render::table); a model with more to say (headings, notes) overrides them.
pub trait Render {
    /// The model's main table: the rows every format shows.
    fn table(&self) -> Table;
    /// Aligned text for a terminal.
    fn text(&self) -> String;
    /// The model as programs read it.
    fn json(&self, out: &mut dyn Write) -> io::Result<()>;
    /// CSV with a header row, for spreadsheets and billing.
    fn csv(&self, out: &mut dyn Write) -> io::Result<()> {
        self.table().write_csv(out)
    }
    fn markdown(&self) -> String {
        self.table().markdown()
    }
    /// A page or fragment for a browser.
    fn html(&self) -> String {
        self.table().html()
    }
}

/// Writes `model` in `format`.
pub fn render(model: &dyn Render, format: Format, out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Table => out.write_all(model.text().as_bytes()),
        Format::Csv => model.csv(out),
        Format::Json => model.json(out),
        Format::Markdown => out.write_all(model.markdown().as_bytes()),
        Format::Html => out.write_all(model.html().as_bytes()),
    }
}

/// Pretty JSON followed by a newline.
pub fn write_json(out: &mut dyn Write, value: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(io::Error::other)?;
    writeln!(out)
}
