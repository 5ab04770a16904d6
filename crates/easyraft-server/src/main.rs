//! `easyraft-server`: one node of an easyraft cluster. See `deploy/easyraft.toml`.

use std::process::ExitCode;

use clap::Parser;
use easyraft_server::cli::Args;
use easyraft_server::config::{env_overrides, Config};

fn main() -> ExitCode {
    let args = Args::parse();
    let mut overrides: Vec<_> = env_overrides(std::env::vars().filter(|(k, _)| k != "EASYRAFT_CONFIG"));
    let flags = match args.overrides() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    overrides.extend(flags);
    let file = args
        .config
        .clone()
        .or_else(|| std::env::var_os("EASYRAFT_CONFIG").map(Into::into));
    let config = match Config::load(file.as_deref(), &overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if args.print_config {
        return match config.to_toml() {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(easyraft_server::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
