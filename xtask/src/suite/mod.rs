//! `cargo xtask test`: the whole test suite on a fresh machine.
//!
//! It finds or installs what the suite needs beyond Rust, then runs it:
//! - **etcd** for the etcd discovery tests: `$ETCD_BIN`, else `etcd` on the `PATH`,
//!   else Debian's `etcd-server` through `apt-get` when running as root;
//! - **Python with `websockets`** for the WebSocket transport's foreign-client test: a
//!   virtual environment under the target directory (`easyraft-venv`), never the
//!   system's pip; the test finds it through `EASYRAFT_PYTHON`.
//!
//! When something is missing and cannot be installed here (not root, no `apt-get`), it
//! stops before running anything and prints the command to run. Then it runs the
//! workspace's tests (cargo-nextest when installed, else `cargo test`), the doctests,
//! the criterion benches once in test mode, and `curl` against a real 3-process `kv`
//! cluster, and ends with one summary line of passed and failed counts.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod error;
mod prerequisites;
mod tally;

pub use error::SuiteError;

pub use prerequisites::{etcd_or_install, PYTHON_ENV, REQUIREMENTS, VENV_DIR};
pub use tally::{Counts, OutputTally};

use crate::workspace::{cargo, workspace_root};

/// Options of `cargo xtask test`.
#[derive(Clone, Debug, Default)]
pub struct SuiteOptions {
    /// Only these packages (`-p`); empty means the whole workspace and the extra steps.
    pub packages: Vec<String>,
    /// Install nothing: run with what is there (tests that need a missing
    /// prerequisite then fail with their own message).
    pub no_install: bool,
    /// Use `cargo test` even when cargo-nextest is installed.
    pub cargo_test: bool,
    /// Passed to `cargo nextest run` / `cargo test` after the package flags.
    pub args: Vec<String>,
}

fn has_nextest() -> bool {
    Command::new(cargo())
        .args(["nextest", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `cmd`, echoing its output, and tallies the tests it reports.
fn run_counted(cmd: Command) -> Result<(ExitStatus, OutputTally), SuiteError> {
    run_tallied(cmd, OutputTally::default())
}

/// [`run_counted`] with a given tally.
fn run_tallied(mut cmd: Command, tally: OutputTally) -> Result<(ExitStatus, OutputTally), SuiteError> {
    println!("xtask test: running {}", describe(&cmd));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| SuiteError::Setup(format!("cannot run {}: {e}", describe(&cmd))))?;
    let tally = Arc::new(Mutex::new(tally));
    let pump = |from: Box<dyn Read + Send>, to_stderr: bool, tally: Arc<Mutex<OutputTally>>| {
        std::thread::spawn(move || {
            let mut reader = BufReader::new(from);
            let mut buf = Vec::new();
            while reader.read_until(b'\n', &mut buf).is_ok_and(|n| n > 0) {
                let line = String::from_utf8_lossy(&buf);
                if to_stderr {
                    let _ = std::io::stderr().write_all(line.as_bytes());
                } else {
                    let _ = std::io::stdout().write_all(line.as_bytes());
                }
                if let Ok(mut t) = tally.lock() {
                    t.line(&line);
                }
                buf.clear();
            }
        })
    };
    let out = child.stdout.take().map(|s| pump(Box::new(s), false, tally.clone()));
    let err = child.stderr.take().map(|s| pump(Box::new(s), true, tally.clone()));
    let status = child
        .wait()
        .map_err(|e| SuiteError::Setup(format!("waiting for {}: {e}", describe(&cmd))))?;
    for t in [out, err].into_iter().flatten() {
        let _ = t.join();
    }
    let tally = Arc::try_unwrap(tally)
        .ok()
        .and_then(|m| m.into_inner().ok())
        .unwrap_or_default();
    Ok((status, tally))
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// One step of the suite and what it found.
#[derive(Debug)]
struct Step {
    name: &'static str,
    counts: Counts,
    /// The step failed without a failing test to show for it (a build error, a script).
    broken: Option<String>,
    failures: Vec<String>,
}

fn step(name: &'static str, status: ExitStatus, tally: OutputTally) -> Step {
    let broken = (!status.success() && tally.counts.failed == 0).then(|| format!("exited with {status}"));
    Step {
        name,
        counts: tally.counts,
        broken,
        failures: tally.failures,
    }
}

fn cargo_cmd(root: &Path, env: &[(String, PathBuf)]) -> Command {
    let mut cmd = Command::new(cargo());
    cmd.current_dir(root);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs the suite; `Ok(true)` when every step passed.
pub fn run(opts: SuiteOptions) -> Result<bool, SuiteError> {
    let started = Instant::now();
    let root = workspace_root();
    let env = prerequisites::prepare(&opts.packages, opts.no_install)?;
    let nextest = !opts.cargo_test && has_nextest();
    let whole = opts.packages.is_empty();
    let select = |cmd: &mut Command| {
        if whole {
            cmd.arg("--workspace");
        }
        for p in &opts.packages {
            cmd.args(["-p", p]);
        }
    };
    let mut steps = Vec::new();

    let mut tests = cargo_cmd(&root, &env);
    if nextest {
        tests.args(["nextest", "run", "--no-fail-fast"]);
    } else {
        tests.args(["test", "--no-fail-fast"]);
    }
    select(&mut tests);
    tests.args(&opts.args);
    let tally = if nextest {
        OutputTally::for_nextest()
    } else {
        OutputTally::default()
    };
    let (status, tally) = run_tallied(tests, tally)?;
    steps.push(step("tests", status, tally));

    if nextest {
        // nextest does not run doctests.
        let mut doc = cargo_cmd(&root, &env);
        doc.args(["test", "--doc", "--no-fail-fast"]);
        select(&mut doc);
        let (status, tally) = run_counted(doc)?;
        steps.push(step("doctests", status, tally));
    }

    if whole || opts.packages.iter().any(|p| p == "benches") {
        // Benches must not rot: criterion runs each once in test mode.
        let mut benches = cargo_cmd(&root, &env);
        benches.args(["test", "-p", "benches", "--benches"]);
        let (status, mut tally) = run_counted(benches)?;
        if let Some(unfinished) = tally.testing.take() {
            tally.counts.failed += 1;
            tally.failures.push(unfinished);
        }
        steps.push(step("benches", status, tally));
    }

    if whole || opts.packages.iter().any(|p| p == "examples" || p == "easyraft-server") {
        let mut curl = Command::new("bash");
        curl.current_dir(&root).arg(root.join(".ci/kv_curl.sh"));
        for (k, v) in &env {
            curl.env(k, v);
        }
        let (status, _) = run_counted(curl)?;
        let counts = if status.success() {
            Counts {
                passed: 1,
                ..Counts::default()
            }
        } else {
            Counts {
                failed: 1,
                ..Counts::default()
            }
        };
        steps.push(Step {
            name: "kv-curl",
            counts,
            broken: None,
            failures: if status.success() {
                vec![]
            } else {
                vec![".ci/kv_curl.sh".into()]
            },
        });
    }

    if whole {
        // Every fuzz target for a short while from the checked-in seeds: a crash
        // (or a target that no longer builds) fails the suite. A deep run is
        // `cargo xtask fuzz --seconds 600` (docs/testing.md).
        let seconds = std::env::var("EASYRAFT_FUZZ_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(10);
        let opts = crate::fuzz::FuzzOptions {
            seconds,
            targets: Vec::new(),
        };
        let (counts, broken, failures) = match crate::fuzz::run(&opts) {
            Ok(runs) => {
                let failed: Vec<String> = runs
                    .iter()
                    .filter_map(|r| r.crash.as_ref().map(|c| format!("{}: {c}", r.target)))
                    .collect();
                let counts = Counts {
                    passed: (runs.len() - failed.len()) as u64,
                    failed: failed.len() as u64,
                    ..Counts::default()
                };
                (counts, None, failed)
            }
            Err(e) => (Counts::default(), Some(e), Vec::new()),
        };
        steps.push(Step {
            name: "fuzz",
            counts,
            broken,
            failures,
        });
    }

    let mut total = Counts::default();
    for s in &steps {
        total.add(s.counts);
    }
    let ok = steps.iter().all(|s| s.counts.failed == 0 && s.broken.is_none());
    for s in &steps {
        for f in s.failures.iter().take(30) {
            println!("xtask test: FAILED {}: {f}", s.name);
        }
        if let Some(b) = &s.broken {
            println!("xtask test: step {} {b}", s.name);
        }
    }
    let parts: Vec<String> = steps
        .iter()
        .map(|s| {
            let mut p = format!("{} {}/{}", s.name, s.counts.passed, s.counts.passed + s.counts.failed);
            if s.counts.ignored > 0 {
                p.push_str(&format!(" ({} ignored)", s.counts.ignored));
            }
            if s.broken.is_some() {
                p.push_str(" (broken)");
            }
            p
        })
        .collect();
    println!(
        "xtask test: {}: {} passed, {} failed, {} ignored [{}] in {}",
        if ok { "PASS" } else { "FAIL" },
        total.passed,
        total.failed,
        total.ignored,
        parts.join(", "),
        minutes(started.elapsed())
    );
    Ok(ok)
}

fn minutes(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}m{:02}s", s / 60, s % 60)
}
