//! `cargo xtask fuzz`: its arguments and the run of the fuzz targets.

use std::process::ExitCode;

use xtask::fuzz::{self, FuzzOptions};

use super::finish;

#[derive(clap::Args)]
pub(crate) struct FuzzArgs {
    /// Seconds per target.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    seconds: u64,
    /// Only these targets, comma-separated [default: all].
    #[arg(long, value_delimiter = ',')]
    targets: Vec<String>,
}

/// `cargo xtask fuzz`: fails on a crash, or when the targets cannot run.
pub(crate) fn run(a: FuzzArgs) -> ExitCode {
    finish(
        match fuzz::run(&FuzzOptions {
            seconds: a.seconds,
            targets: a.targets,
        }) {
            Ok(runs) => Ok(runs.iter().all(|r| r.crash.is_none())),
            Err(e) => {
                eprintln!("xtask fuzz: {e}");
                Ok(false)
            }
        },
    )
}
