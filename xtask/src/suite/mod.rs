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

/// The name of the virtual environment's directory under the target directory.
pub const VENV_DIR: &str = "easyraft-venv";
/// The environment variable through which the WebSocket tests find their Python.
pub const PYTHON_ENV: &str = "EASYRAFT_PYTHON";
/// The Python requirements of the suite (relative to the workspace root).
pub const REQUIREMENTS: &str = "crates/raft-transport-ws/tests/python/requirements.txt";

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

/// Why the suite could not run.
#[derive(Debug)]
pub enum SuiteError {
    /// A prerequisite is missing and cannot be installed by this process.
    Missing(String),
    /// An installation or a tool failed.
    Setup(String),
}

impl std::fmt::Display for SuiteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SuiteError::Missing(m) | SuiteError::Setup(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for SuiteError {}

/// Passed and failed counts of one step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Tests that passed.
    pub passed: u64,
    /// Tests that failed (or timed out).
    pub failed: u64,
    /// Tests that were ignored or skipped (the suite has none; shown when not zero).
    pub ignored: u64,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.ignored += other.ignored;
    }
}

/// What a test runner printed, read line by line.
#[derive(Debug, Default)]
pub struct OutputTally {
    /// The counts seen so far.
    pub counts: Counts,
    /// Names of failing tests (as the runner printed them).
    pub failures: Vec<String>,
    /// The bench criterion is testing (`Testing <name>`), until its `Success`.
    testing: Option<String>,
    /// The output is nextest's: only its summary and FAIL lines count (the output of
    /// a failing test, which nextest shows, has libtest's own lines in it).
    nextest: bool,
}

impl OutputTally {
    /// A tally of nextest's output.
    pub fn for_nextest() -> Self {
        OutputTally {
            nextest: true,
            ..OutputTally::default()
        }
    }

    /// Reads one line of `cargo test`, `cargo nextest` or criterion (`--test`) output.
    pub fn line(&mut self, line: &str) {
        let line = line.trim();
        // criterion in test mode: "Testing <bench>" then "Success" (or a panic).
        if let Some(name) = line.strip_prefix("Testing ") {
            if let Some(unfinished) = self.testing.replace(name.to_string()) {
                self.counts.failed += 1;
                self.failures.push(unfinished);
            }
            return;
        }
        if line == "Success" {
            if self.testing.take().is_some() {
                self.counts.passed += 1;
            }
            return;
        }
        // cargo test: "test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; ..."
        if self.nextest && (line.starts_with("test result: ") || line.starts_with("test ")) {
            return;
        }
        if let Some(rest) = line.strip_prefix("test result: ") {
            for part in rest.split(';') {
                let part = part.trim().trim_start_matches("ok.").trim_start_matches("FAILED.");
                let mut words = part.split_whitespace();
                if let (Some(n), Some(what)) = (words.next(), words.next()) {
                    if let Ok(n) = n.parse::<u64>() {
                        match what {
                            "passed" => self.counts.passed += n,
                            "failed" => self.counts.failed += n,
                            "ignored" => self.counts.ignored += n,
                            _ => {}
                        }
                    }
                }
            }
            return;
        }
        // cargo test: "test some::name ... FAILED"
        if let Some(name) = line.strip_prefix("test ").and_then(|l| l.strip_suffix(" ... FAILED")) {
            self.failures.push(name.to_string());
            return;
        }
        // nextest: "Summary [  12.345s] 384 tests run: 380 passed, 3 failed, 1 timed out, 2 skipped"
        if line.starts_with("Summary [") {
            if let Some((_, tail)) = line.split_once("tests run:").or_else(|| line.split_once("test run:")) {
                for part in tail.split(',') {
                    let mut words = part.split_whitespace();
                    if let (Some(n), Some(what)) = (words.next(), words.next()) {
                        if let Ok(n) = n.parse::<u64>() {
                            match what {
                                "passed" => self.counts.passed += n,
                                "failed" | "timed" => self.counts.failed += n,
                                "skipped" => self.counts.ignored += n,
                                _ => {}
                            }
                        }
                    }
                }
            }
            return;
        }
        // nextest: "FAIL [   1.234s] crate::binary some::name" / "TIMEOUT [ 300.0s] ..."
        for tag in ["FAIL [", "TIMEOUT ["] {
            if let Some(rest) = line.strip_prefix(tag) {
                if let Some((_, name)) = rest.split_once(']') {
                    // Drop nextest's progress counter, "( 55/231) ".
                    let name = name.trim();
                    let name = match name.strip_prefix('(').and_then(|n| n.split_once(')')) {
                        Some((_, rest)) => rest.trim(),
                        None => name,
                    };
                    let name = name.to_string();
                    if !self.failures.contains(&name) {
                        self.failures.push(name);
                    }
                }
            }
        }
    }
}

/// The workspace root (xtask's parent directory).
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(Path::to_path_buf).unwrap_or(manifest)
}

/// The cargo target directory (`$CARGO_TARGET_DIR`, else `target/` in the workspace).
pub fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => {
            let d = PathBuf::from(d);
            if d.is_absolute() {
                d
            } else {
                root.join(d)
            }
        }
        None => root.join("target"),
    }
}

fn is_root() -> bool {
    // The effective uid from /proc (Linux); elsewhere assume not root.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

fn quiet(cmd: &mut Command) -> Result<ExitStatus, SuiteError> {
    cmd.stdin(Stdio::null())
        .status()
        .map_err(|e| SuiteError::Setup(format!("cannot run {cmd:?}: {e}")))
}

/// What the suite needs, found or to be installed.
#[derive(Debug)]
struct Prerequisites {
    etcd: Option<PathBuf>,
    python: Option<PathBuf>,
}

fn venv_python(venv: &Path) -> PathBuf {
    venv.join("bin").join("python")
}

fn python_has_websockets(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import websockets"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn find() -> Prerequisites {
    let root = workspace_root();
    let python = venv_python(&target_dir(&root).join(VENV_DIR));
    Prerequisites {
        etcd: raft_discovery::testing::etcd_binary().ok(),
        python: python_has_websockets(&python).then_some(python),
    }
}

/// Which prerequisites the selected packages use.
fn needs(packages: &[String]) -> (bool, bool) {
    if packages.is_empty() {
        return (true, true);
    }
    let has = |p: &str| packages.iter().any(|q| q == p);
    let etcd = has("raft-discovery") || has("raft-transport-ws") || has("xtask");
    let python = has("raft-transport-ws");
    (etcd, python)
}

fn apt_install(packages: &[&str]) -> Result<(), SuiteError> {
    let ok = quiet(Command::new("apt-get").args(["update", "-qq"]))?.success()
        && quiet(
            Command::new("apt-get")
                .env("DEBIAN_FRONTEND", "noninteractive")
                .args(["install", "-y", "-qq"])
                .args(packages),
        )?
        .success();
    if ok {
        Ok(())
    } else {
        Err(SuiteError::Setup(format!(
            "apt-get install -y {} failed",
            packages.join(" ")
        )))
    }
}

fn can_apt() -> bool {
    is_root() && on_path("apt-get").is_some()
}

fn etcd_cannot_be_installed() -> SuiteError {
    SuiteError::Missing(
        "xtask test: etcd is missing (the etcd discovery tests start a real one) and this user cannot \
         install it; run `sudo apt-get install -y etcd-server` (or set ETCD_BIN=/path/to/etcd), then \
         `cargo xtask test` again"
            .into(),
    )
}

/// The etcd binary (`$ETCD_BIN`, else `etcd` on the `PATH`), installing Debian's
/// `etcd-server` through `apt-get` first when it is missing and this user may.
pub fn etcd_or_install() -> Result<PathBuf, SuiteError> {
    match raft_discovery::testing::etcd_binary() {
        Ok(bin) => Ok(bin),
        Err(_) => {
            eprintln!("etcd is missing: installing Debian's etcd-server (apt-get install -y etcd-server)");
            install_etcd()
        }
    }
}

fn install_etcd() -> Result<PathBuf, SuiteError> {
    if !can_apt() {
        return Err(etcd_cannot_be_installed());
    }
    apt_install(&["etcd-server"])?;
    raft_discovery::testing::etcd_binary().map_err(SuiteError::Setup)
}

fn make_venv(venv: &Path) -> Result<bool, SuiteError> {
    let Some(python3) = on_path("python3") else {
        return Ok(false);
    };
    if venv.exists() {
        std::fs::remove_dir_all(venv).map_err(|e| SuiteError::Setup(format!("{}: {e}", venv.display())))?;
    }
    Ok(quiet(
        Command::new(python3)
            .args(["-m", "venv"])
            .arg(venv)
            .stdout(Stdio::null()),
    )?
    .success())
}

fn install_python(venv: &Path) -> Result<PathBuf, SuiteError> {
    if !make_venv(venv)? {
        // Debian's python3 needs python3-venv for `python3 -m venv`.
        if !can_apt() {
            return Err(SuiteError::Missing(format!(
                "xtask test: cannot make a Python virtual environment at {} (the WebSocket tests run a \
                 Python client); run `sudo apt-get install -y python3 python3-venv`, then `cargo xtask \
                 test` again",
                venv.display()
            )));
        }
        apt_install(&["python3", "python3-venv"])?;
        if !make_venv(venv)? {
            return Err(SuiteError::Setup(format!("python3 -m venv {} failed", venv.display())));
        }
    }
    let python = venv_python(venv);
    let requirements = workspace_root().join(REQUIREMENTS);
    let ok = quiet(
        Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(&requirements),
    )?
    .success();
    if !ok || !python_has_websockets(&python) {
        return Err(SuiteError::Setup(format!(
            "{} -m pip install -r {} failed",
            python.display(),
            requirements.display()
        )));
    }
    Ok(python)
}

/// Finds the prerequisites, installs what is missing (or stops with the command to
/// run), and returns the environment the tests run with.
fn prepare(opts: &SuiteOptions) -> Result<Vec<(String, PathBuf)>, SuiteError> {
    let (need_etcd, need_python) = needs(&opts.packages);
    let mut found = find();
    let venv = target_dir(&workspace_root()).join(VENV_DIR);
    let missing_etcd = need_etcd && found.etcd.is_none();
    let missing_python = need_python && found.python.is_none();
    if opts.no_install {
        if missing_etcd || missing_python {
            let what: Vec<&str> = [(missing_etcd, "etcd"), (missing_python, "Python with websockets")]
                .iter()
                .filter_map(|(m, w)| m.then_some(*w))
                .collect();
            println!(
                "xtask test: --no-install: {} missing; the tests that need it will fail and say so",
                what.join(" and ")
            );
        }
    } else if missing_etcd || missing_python {
        let mut what = Vec::new();
        if missing_etcd {
            what.push("Debian's etcd-server through apt-get (the etcd discovery tests start a real etcd)".to_string());
        }
        if missing_python {
            what.push(format!(
                "a Python virtual environment with websockets in {} (the WebSocket transport's foreign-client test)",
                venv.display()
            ));
        }
        // Stop before installing anything if one of them cannot be installed.
        if missing_etcd && !can_apt() {
            return Err(etcd_cannot_be_installed());
        }
        println!("xtask test: installing {}", what.join(", and "));
        if missing_etcd {
            found.etcd = Some(install_etcd()?);
        }
        if missing_python {
            found.python = Some(install_python(&venv)?);
        }
    } else {
        println!(
            "xtask test: nothing to install (etcd: {}; python: {})",
            found
                .etcd
                .as_ref()
                .map_or("not needed".into(), |p| p.display().to_string()),
            found
                .python
                .as_ref()
                .map_or("not needed".into(), |p| p.display().to_string()),
        );
    }
    let mut env = Vec::new();
    if let Some(etcd) = found.etcd {
        env.push(("ETCD_BIN".to_string(), etcd));
    }
    if let Some(python) = found.python {
        env.push((PYTHON_ENV.to_string(), python));
    }
    Ok(env)
}

fn has_nextest() -> bool {
    Command::new(cargo())
        .args(["nextest", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn cargo() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
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
    let env = prepare(&opts)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_test_result_lines_are_summed_and_failures_named() {
        let mut t = OutputTally::default();
        t.line("test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s");
        t.line("test a::b ... FAILED");
        t.line("test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.00s");
        assert_eq!(
            t.counts,
            Counts {
                passed: 15,
                failed: 2,
                ignored: 1
            }
        );
        assert_eq!(t.failures, vec!["a::b".to_string()]);
    }

    #[test]
    fn nextest_summary_and_fail_lines_are_read() {
        let mut t = OutputTally::for_nextest();
        t.line("        FAIL [   1.234s] ( 55/231) raft-sim::sim_safety campaign");
        // A failing test's own output, which nextest shows: not counted again.
        t.line("test campaign ... FAILED");
        t.line("test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 9 filtered out; finished in 0.1s");
        t.line("        FAIL [   1.234s] raft-sim::sim_safety campaign");
        t.line("     TIMEOUT [ 300.001s] xtask::chaos chaos_passes");
        t.line("     Summary [  12.345s] 384 tests run: 380 passed, 3 failed, 1 timed out, 2 skipped");
        assert_eq!(
            t.counts,
            Counts {
                passed: 380,
                failed: 4,
                ignored: 2
            }
        );
        assert_eq!(
            t.failures,
            vec![
                "raft-sim::sim_safety campaign".to_string(),
                "xtask::chaos chaos_passes".to_string()
            ]
        );
    }

    #[test]
    fn criterion_test_mode_counts_each_bench_that_reports_success() {
        let mut t = OutputTally::default();
        for l in [
            "Testing core/step/64",
            "Success",
            "Testing cluster/propose",
            "thread 'main' panicked",
            "Testing ws/x",
            "Success",
        ] {
            t.line(l);
        }
        assert_eq!(
            t.counts,
            Counts {
                passed: 2,
                failed: 1,
                ignored: 0
            }
        );
        assert_eq!(t.failures, vec!["cluster/propose".to_string()]);
    }

    #[test]
    fn only_the_packages_that_use_a_prerequisite_ask_for_it() {
        assert_eq!(needs(&[]), (true, true));
        assert_eq!(needs(&["raft-core".into()]), (false, false));
        assert_eq!(needs(&["raft-discovery".into()]), (true, false));
        assert_eq!(needs(&["raft-transport-ws".into()]), (true, true));
    }
}
