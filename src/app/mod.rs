//! The use cases the commands share: load the configuration, open the store, run one probe,
//! analyse a period, write the reports, the SLA PDFs and the status page.
//!
//! Sixth floor of the data flow, above `report`: it wires the floors below together and does the
//! I/O they leave out (files, the clock, the lock). `cli` parses arguments and calls into here;
//! the demo does the same without `cli`. Errors carry a [`ErrorKind`] that `cli` turns into
//! an exit code.

pub mod analyze;
pub mod import;
pub mod incident;
pub mod metrics;
pub mod notify;
pub mod probe;
pub mod reports;
pub mod results;
pub mod sla;
pub mod status;
pub mod store_copy;

use std::fmt;
use std::path::{Path, PathBuf};

use crate::fleet::{Fleet, StoreLocation};
use crate::report::ReportError;
use crate::store::{self, Store, StoreError};

/// What kind of failure a use case ended in; `cli` maps each to an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A bug or an environment problem (a file that cannot be written, no runtime).
    Internal,
    /// The configuration, the inventory or an argument is wrong.
    Config,
    /// The store cannot be opened, read or written.
    Store,
    /// Another run holds the lock.
    Locked,
    /// The run was stored but marked invalid (the prober's own network failed).
    InvalidRun,
    /// Whoever read the output stopped reading (`| head`): not a failure, nothing to say.
    OutputClosed,
}

/// A failed use case: what went wrong, for people, and its kind.
#[derive(Debug)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into() }
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Internal, message)
    }
    pub fn config(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Config, message)
    }
    pub fn store(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Store, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::store(e.to_string())
    }
}

impl From<ReportError> for Error {
    fn from(e: ReportError) -> Self {
        let kind = match &e {
            ReportError::Input(_) | ReportError::Period(_) => ErrorKind::Config,
            ReportError::Store(_) => ErrorKind::Store,
            ReportError::Write { .. } | ReportError::Render(_) => ErrorKind::Internal,
        };
        Error::new(kind, e.to_string())
    }
}

/// The error for a failed write of `what` to the output. A reader that went away (`| head -1`)
/// ends the command quietly, as Unix tools do; anything else is an internal error.
pub fn write_error(what: &str) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| match e.kind() {
        std::io::ErrorKind::BrokenPipe => Error::new(ErrorKind::OutputClosed, String::new()),
        _ => Error::internal(format!("writing {what}: {e}")),
    }
}

/// Where the configuration is: the given path, then the XDG location, then /etc.
pub fn config_path(given: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = given {
        return Ok(path.to_path_buf());
    }
    let xdg = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
    let candidates: Vec<PathBuf> = xdg
        .map(|d| d.join("fleetprobe/fleetprobe.toml"))
        .into_iter()
        .chain([PathBuf::from("/etc/fleetprobe/fleetprobe.toml")])
        .collect();
    candidates.iter().find(|p| p.exists()).cloned().ok_or_else(|| {
        let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
        Error::config(format!(
            "no configuration given; pass -c FILE (tried {}). `fleetprobe demo` runs without one",
            tried.join(", ")
        ))
    })
}

/// Reads and validates the configuration and the inventory it points at.
pub fn load_fleet(given: Option<&Path>) -> Result<Fleet> {
    let path = config_path(given)?;
    Fleet::load(&path).map_err(|e| Error::config(format!("invalid configuration:\n{e}")))
}

/// What every command starts from: the validated fleet and where its store is.
pub struct Context {
    pub fleet: Fleet,
    pub store: StoreLocation,
}

impl Context {
    /// Loads the fleet; `store` (a path, `sqlite://PATH` or `postgres://...`) overrides the
    /// configuration's store.
    pub fn load(config: Option<&Path>, store: Option<&str>) -> Result<Context> {
        let fleet = load_fleet(config)?;
        Context::with_fleet(fleet, store)
    }

    pub fn with_fleet(fleet: Fleet, store: Option<&str>) -> Result<Context> {
        let store = match store {
            None => fleet.store.clone(),
            Some(text) => {
                StoreLocation::parse(text, Path::new("")).map_err(|e| Error::config(format!("--store: {e}")))?
            }
        };
        Ok(Context { fleet, store })
    }

    /// Opens the store for reading; a store that does not exist yet is an error, not a new file.
    pub fn open_existing_store(&self) -> Result<Box<dyn Store>> {
        self.require_existing_store()?;
        Ok(store::open_read_only(&self.store)?)
    }

    /// The store, which must exist, opened for writing (incident updates, pruning).
    pub fn open_existing_store_for_writing(&self) -> Result<Box<dyn Store>> {
        self.require_existing_store()?;
        Ok(store::open(&self.store)?)
    }

    fn require_existing_store(&self) -> Result<()> {
        if let StoreLocation::Sqlite(path) = &self.store
            && !path.exists()
        {
            return Err(Error::store(format!(
                "store {} does not exist yet; run `fleetprobe probe` first",
                path.display()
            )));
        }
        Ok(())
    }

    /// The cluster of that name, or an error listing the known ones.
    pub fn cluster(&self, name: &str) -> Result<crate::fleet::ClusterIdx> {
        self.fleet.cluster_index(name).ok_or_else(|| {
            let known: Vec<&str> = self.fleet.clusters.iter().map(|c| c.name.as_str()).collect();
            Error::config(format!("--cluster: unknown cluster `{name}`; expected one of: {}", known.join(", ")))
        })
    }
}

/// Standard output, or the file given with `-o`.
pub fn output(path: Option<&Path>) -> Result<Box<dyn std::io::Write>> {
    match path {
        None => Ok(Box::new(std::io::BufWriter::new(std::io::stdout().lock()))),
        Some(path) => std::fs::File::create(path)
            .map(|f| Box::new(std::io::BufWriter::new(f)) as Box<dyn std::io::Write>)
            .map_err(|e| Error::internal(format!("{}: {e}", path.display()))),
    }
}
