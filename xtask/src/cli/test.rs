//! `cargo xtask test`: its arguments and the whole suite they run.

use std::process::ExitCode;

use xtask::suite::{self, SuiteError, SuiteOptions};

#[derive(clap::Args)]
pub(crate) struct TestArgs {
    /// Test only these packages (repeatable); the extra steps (benches, curl) run only
    /// for the whole workspace or when their package is named.
    #[arg(short = 'p', long = "package", value_name = "PACKAGE")]
    packages: Vec<String>,
    /// Install nothing; tests that need a missing prerequisite fail and say so.
    #[arg(long)]
    no_install: bool,
    /// Use `cargo test` even when cargo-nextest is installed.
    #[arg(long)]
    cargo_test: bool,
    /// Passed to `cargo nextest run` (or `cargo test`) as they are, e.g. a test filter.
    #[arg(last = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// `cargo xtask test`: exit code 2 when a prerequisite is missing and cannot be
/// installed here.
pub(crate) fn run(a: TestArgs) -> ExitCode {
    let opts = SuiteOptions {
        packages: a.packages,
        no_install: a.no_install,
        cargo_test: a.cargo_test,
        args: a.args,
    };
    match suite::run(opts) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(SuiteError::Missing(m)) => {
            eprintln!("{m}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("xtask test: {e}");
            ExitCode::FAILURE
        }
    }
}
