//! Validation errors that point at the exact place in the input.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in the configuration or inventory: where it is and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetError {
    pub file: PathBuf,
    pub line: Option<u64>,
    /// Column name (CSV) or key path (TOML), e.g. `cluster` or `maintenance[2].end`.
    pub field: Option<String>,
    pub message: String,
}

impl FleetError {
    pub fn file(file: &Path, message: impl Into<String>) -> Self {
        FleetError { file: file.to_path_buf(), line: None, field: None, message: message.into() }
    }

    pub fn at(file: &Path, line: Option<u64>, field: impl Into<String>, message: impl Into<String>) -> Self {
        FleetError { file: file.to_path_buf(), line, field: Some(field.into()), message: message.into() }
    }
}

impl fmt::Display for FleetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// All problems found in one validation pass, in the order they were found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FleetErrors(pub Vec<FleetError>);

/// Stop listing after this many; a broken export can have a million bad rows.
const MAX_REPORTED: usize = 200;

impl FleetErrors {
    pub fn one(error: FleetError) -> Self {
        FleetErrors(vec![error])
    }

    pub fn push(&mut self, error: FleetError) {
        self.0.push(error);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl fmt::Display for FleetErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Files in the order they were read, lines in order within each file.
        let mut files: Vec<&Path> = Vec::new();
        for error in &self.0 {
            if !files.contains(&error.file.as_path()) {
                files.push(&error.file);
            }
        }
        let mut sorted: Vec<&FleetError> = self.0.iter().collect();
        sorted.sort_by_key(|e| (files.iter().position(|f| *f == e.file.as_path()), e.line.unwrap_or(0)));
        for error in sorted.into_iter().take(MAX_REPORTED) {
            writeln!(f, "{error}")?;
        }
        if self.0.len() > MAX_REPORTED {
            writeln!(f, "... and {} more problems", self.0.len() - MAX_REPORTED)?;
        }
        write!(f, "{} problem{} found", self.0.len(), if self.0.len() == 1 { "" } else { "s" })
    }
}

impl std::error::Error for FleetErrors {}

/// 1-based line number of a byte offset in a text.
pub(crate) fn line_of(text: &str, offset: usize) -> u64 {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count() as u64 + 1
}
