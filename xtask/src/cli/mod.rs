//! The `cargo xtask` binary's commands, one file each: its clap arguments and how they
//! become the library's options. What the commands share (logging, the runtime, the
//! exit code) is here.

pub(crate) mod bench;
pub(crate) mod chaos;
pub(crate) mod demo;
pub(crate) mod fuzz;
pub(crate) mod test;

use std::io::IsTerminal;
use std::process::ExitCode;

use tracing_subscriber::EnvFilter;
use xtask::error::TaskError;

/// What a command ends with: whether it passed, or why it could not run.
pub(crate) type Outcome = Result<bool, TaskError>;

/// Logs to stderr; `RUST_LOG` overrides `default`.
pub(crate) fn logging(default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

/// The multi-threaded runtime a command runs on.
pub(crate) fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build()
}

/// The exit code of an outcome: success when it passed, failure (and the error on
/// stderr) otherwise.
pub(crate) fn finish(result: Outcome) -> ExitCode {
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
