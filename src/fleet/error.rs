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
    pub fn file(file: &Path, message: impl fmt::Display) -> Self {
        FleetError { file: file.to_path_buf(), line: None, field: None, message: cut_values(&message.to_string()) }
    }

    pub fn at(file: &Path, line: Option<u64>, field: impl Into<String>, message: impl fmt::Display) -> Self {
        FleetError {
            file: file.to_path_buf(),
            line,
            field: Some(field.into()),
            message: cut_values(&message.to_string()),
        }
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

/// A value that is not what was expected, and what was. The caller knows where it was written
/// and wraps it in a [`FleetError`] with file, line and field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidValue {
    #[error("`{0}` is not a duration; expected e.g. \"10s\", \"500ms\", \"1m 30s\", \"7d\"")]
    Duration(String),
    #[error("`{0}` is negative; expected a positive duration")]
    NegativeDuration(String),
    #[error("not a valid URL ({0}); expected e.g. https://www.example.com/")]
    Url(String),
    #[error("scheme `{0}` is not supported; expected http or https")]
    UrlScheme(String),
    #[error("missing scheme; expected an absolute URL such as https://www.example.com/")]
    UrlWithoutScheme,
    #[error("missing host; expected an absolute URL such as https://www.example.com/")]
    UrlWithoutHost,
    #[error("user information in URLs is not supported")]
    UrlUserInfo,
    #[error("empty; expected a DNS name such as www.example.com")]
    EmptyHostname,
    #[error("`{0}` is not ASCII; write internationalized names in punycode (xn--...)")]
    HostnameNotAscii(String),
    #[error("`{0}` is longer than 253 characters")]
    HostnameTooLong(String),
    #[error("`{name}` is not a valid DNS name (label `{label}`); expected labels of letters, digits and '-'")]
    HostnameLabel { name: String, label: String },
    #[error(
        "`{0}` is not an IP address; expected addresses separated by spaces or ';', `*` for any, or empty for the cluster's frontends"
    )]
    ExpectedAddress(String),
    #[error("`{0}` is not an address; expected e.g. 192.0.2.53, 192.0.2.53:5353 or [2001:db8::53]:53")]
    SocketAddr(String),
    #[error("a tcp:// control target needs a port")]
    ControlTargetWithoutPort,
    #[error("`{0}` is not a status or range; expected e.g. \"200\", \"200-399\" or \"2xx\"")]
    StatusRange(String),
    #[error("`{0}` is not an amount; expected e.g. 20.00 (a dot for decimals, no currency sign)")]
    Money(String),
    #[error("`{0}` is too large; expected at most 1000000.00 a month")]
    MoneyTooLarge(String),
    #[error("empty store path; expected a file path, sqlite://PATH or postgres://...")]
    EmptyStorePath,
    #[error("unknown store URL `{0}`; expected a file path, sqlite://PATH or postgres://...")]
    StoreUrl(String),
    #[error("{0} (each `kind` or `kind:PORT`, e.g. \"http dns\")")]
    UnknownCheck(#[from] super::checks::UnknownCheckKind),
    #[error("`{token}`: the {kind} check takes no port from the site; ports are for: {takes_ports}")]
    CheckTakesNoPort { token: String, kind: super::checks::CheckKind, takes_ports: String },
    #[error("`{token}`: `{port}` is not a port; expected {kind}:PORT with PORT from 1 to 65535")]
    CheckPort { token: String, kind: super::checks::CheckKind, port: String },
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

/// The longest value an error echoes; longer ones are cut with "…".
pub(crate) const MAX_ECHOED: usize = 80;

/// `text` cut at [`MAX_ECHOED`] characters.
pub(crate) fn cut(text: &str) -> String {
    if text.chars().count() <= MAX_ECHOED {
        text.to_string()
    } else {
        text.chars().take(MAX_ECHOED).chain(['…']).collect()
    }
}

/// Cuts every quoted value (between backticks or double quotes) of a message to
/// [`MAX_ECHOED`] characters, so a huge value is not echoed whole.
pub(crate) fn cut_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(1024));
    let mut quoted: Option<(char, usize)> = None;
    for c in message.chars() {
        match quoted {
            Some((q, _)) if c == q => {
                quoted = None;
                out.push(c);
            }
            Some((q, n)) => {
                if n < MAX_ECHOED {
                    out.push(c);
                } else if n == MAX_ECHOED {
                    out.push('…');
                }
                quoted = Some((q, n + 1));
            }
            None => {
                if c == '`' || c == '"' {
                    quoted = Some((c, 0));
                }
                out.push(c);
            }
        }
    }
    out
}

/// The text of a file's bytes, or an error naming the line (and column) of the first byte
/// that is not UTF-8.
pub(crate) fn utf8_text(path: &Path, bytes: Vec<u8>, expected: &str) -> Result<String, FleetError> {
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let before = &e.as_bytes()[..valid];
        let line = before.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        let column = valid - before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1) + 1;
        FleetError {
            file: path.to_path_buf(),
            line: Some(line),
            field: None,
            message: format!("not UTF-8 text (invalid byte in column {column}); expected {expected}"),
        }
    })
}

/// 1-based line number of a byte offset in a text.
pub(crate) fn line_of(text: &str, offset: usize) -> u64 {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count() as u64 + 1
}
