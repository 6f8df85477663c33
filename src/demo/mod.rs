//! `fleetprobe demo`: the example fleet served on loopback inside this process, then probed.

use std::path::PathBuf;

use crate::cli::CommandError;

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Directory for the demo's store and files [default: a new temporary directory]
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

pub fn run(_args: &DemoArgs) -> Result<(), CommandError> {
    Err(CommandError::internal("demo: not yet available"))
}
