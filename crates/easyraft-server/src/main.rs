//! `easyraft-server`: one node of an easyraft cluster. See `deploy/easyraft.toml`.

use std::process::ExitCode;

use clap::Parser;
use easyraft_server::cli::{Args, Command};
use easyraft_server::config::{env_overrides, Config};

fn main() -> ExitCode {
    let args = Args::parse();
    let vars = || std::env::vars().filter(|(k, _)| k != "EASYRAFT_CONFIG");
    let mut overrides: Vec<_> = env_overrides(vars());
    if !args.print_config {
        for name in Config::unknown_env(vars()) {
            eprintln!("note: ignoring {name}: it names no configuration key");
        }
    }
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
    match &args.command {
        Some(Command::Restore { from_snapshot }) => {
            return match easyraft_server::recover::restore(&config, from_snapshot) {
                Ok(meta) => {
                    println!(
                        "restored {} from {} (index {}, term {}) for members {:?}",
                        config.data_dir.display(),
                        from_snapshot.display(),
                        meta.index,
                        meta.term,
                        meta.membership.voters.iter().map(|v| v.as_str()).collect::<Vec<_>>()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Some(Command::UnsafeRecover) => {
            return match easyraft_server::recover::unsafe_recover(&config) {
                Ok(r) => {
                    println!(
                        "{} is now the only voter of {}: kept every entry through {} (known committed: {}), new membership at {} in term {}",
                        config.id,
                        config.data_dir.display(),
                        r.kept_through,
                        r.previously_committed,
                        r.membership_index,
                        r.term
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        None => {}
    }
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
