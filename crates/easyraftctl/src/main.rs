//! `easyraftctl`: the printing layer over the library. Reports go to stdout, notes
//! and errors to stderr, logs (with `-v`) to stderr.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use easyraftctl::cli::Cli;
use easyraftctl::client::Client;
use easyraftctl::error::{CtlError, Exit, ExitOf};
use easyraftctl::output::Format;

fn exit(code: Exit) -> ExitCode {
    ExitCode::from(code.code())
}

fn report_error(e: &CtlError) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "easyraftctl: error: {e}");
    let hint = match e.exit() {
        Exit::Unreachable => Some("check --endpoints (or EASYRAFT_ENDPOINTS) and that the nodes run"),
        Exit::UnknownOutcome => Some("the write may have been applied: read before retrying"),
        _ => None,
    };
    if let Some(h) = hint {
        let _ = writeln!(err, "easyraftctl: hint: {h}");
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // --help and --version print to stdout and exit 0; errors exit 2.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    if cli.verbose > 0 {
        let level = if cli.verbose > 1 {
            "easyraftctl=trace,easyraft_client=trace"
        } else {
            "easyraftctl=debug,easyraft_client=debug"
        };
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(level))
            .with_writer(std::io::stderr)
            .init();
    }
    let settings = match easyraftctl::run::settings(&cli) {
        Ok(s) => s,
        Err(e) => {
            report_error(&e);
            return exit(e.exit());
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "easyraftctl: error: cannot start the runtime: {e}");
            return exit(Exit::Error);
        }
    };
    // The client names its setting `cacert`; here it is the flag.
    let client = match Client::new(settings) {
        Ok(c) => c,
        Err(CtlError::Usage(m)) => {
            let e = CtlError::Usage(m.replace("`cacert`", "--cacert FILE"));
            report_error(&e);
            return exit(e.exit());
        }
        Err(e) => {
            report_error(&e);
            return exit(e.exit());
        }
    };
    let format = cli.output;
    let mut first_event = true;
    let mut print = |r: &easyraftctl::output::Report| {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(r.render(format, first_event).as_bytes());
        let _ = out.flush();
        if r.event {
            first_event = false;
        }
        if format == Format::Table {
            let mut err = std::io::stderr().lock();
            for n in &r.notes {
                let _ = writeln!(err, "easyraftctl: {n}");
            }
        }
    };
    match rt.block_on(easyraftctl::run::run(&client, &cli.command, &mut print)) {
        Ok(code) => exit(code),
        Err(e) => {
            report_error(&e);
            exit(e.exit())
        }
    }
}
