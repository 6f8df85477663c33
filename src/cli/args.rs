//! Arguments several commands share, and their conversion into the plain values `app` and
//! `report` take.

use std::path::PathBuf;

use clap::ValueEnum;

use crate::report::Format;
use crate::report::period::PeriodSpec;

#[derive(clap::Args, Clone)]
pub struct ConfigArgs {
    /// Configuration file [default: $XDG_CONFIG_HOME/fleetprobe/fleetprobe.toml, then /etc/fleetprobe/fleetprobe.toml]
    #[arg(short, long, env = "FLEETPROBE_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(clap::Args, Clone)]
pub struct StoreArgs {
    /// Store location, overriding the configuration: a file path or sqlite://PATH
    #[arg(long, env = "FLEETPROBE_STORE")]
    pub store: Option<String>,
}

/// The configuration and the store: what every command but `demo` starts from.
#[derive(clap::Args, Clone)]
pub struct Common {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub store: StoreArgs,
}

impl Common {
    pub fn context(&self) -> crate::app::Result<crate::app::Context> {
        crate::app::Context::load(self.config.config.as_deref(), self.store.store.as_deref())
    }
}

/// Period selection shared by every report command.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct PeriodArgs {
    /// A calendar month (2026-10), day (2026-10-14) or year (2026) in --tz
    #[arg(long, conflicts_with_all = ["from", "to", "last"])]
    pub period: Option<String>,
    /// Start: a date (midnight in --tz) or an RFC 3339 time
    #[arg(long, requires = "to", conflicts_with = "last")]
    pub from: Option<String>,
    /// End (exclusive): a date (midnight in --tz) or an RFC 3339 time
    #[arg(long, requires = "from", conflicts_with = "last")]
    pub to: Option<String>,
    /// The last stretch of time before now: 24h, 7d, 30d
    #[arg(long)]
    pub last: Option<String>,
    /// Time zone for calendar periods and for times shown in the report
    #[arg(long, default_value = "UTC", env = "FLEETPROBE_TZ")]
    pub tz: String,
    /// Pretend it is this UTC time (deterministic reports in tests and demos)
    #[arg(long, env = "FLEETPROBE_NOW", value_name = "TIMESTAMP")]
    pub now: Option<jiff::Timestamp>,
}

impl PeriodArgs {
    pub fn spec(&self) -> PeriodSpec {
        PeriodSpec {
            period: self.period.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
            last: self.last.clone(),
            tz: self.tz.clone(),
            now: self.now,
        }
    }
}

/// `--format` of the tabular reports.
#[derive(Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Table,
    Csv,
    Json,
    Markdown,
    Html,
}

impl From<FormatArg> for Format {
    fn from(format: FormatArg) -> Format {
        match format {
            FormatArg::Table => Format::Table,
            FormatArg::Csv => Format::Csv,
            FormatArg::Json => Format::Json,
            FormatArg::Markdown => Format::Markdown,
            FormatArg::Html => Format::Html,
        }
    }
}
