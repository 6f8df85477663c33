//! The `fleetprobe` binary: parses arguments, runs one command, prints errors once.

use std::process::ExitCode;

fn main() -> ExitCode {
    fleetprobe::cli::main()
}
