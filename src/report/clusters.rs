//! `fleetprobe report clusters`: availability, coverage and incidents per cluster.

use crate::cli::{CommandError, ConfigArgs, StoreArgs};
use crate::report::period::PeriodArgs;

#[derive(clap::Args)]
pub struct ClustersArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub period: PeriodArgs,
}

pub fn run(_args: &ClustersArgs) -> Result<(), CommandError> {
    Err(CommandError::internal("report clusters: not yet available"))
}
