//! `cargo xtask fuzz`: every cargo-fuzz target in `fuzz/`, each for a while, with the
//! checked-in seeds; fails on the first crash, naming the input that caused it.
//!
//! It installs what it needs: the nightly toolchain must be there (rustup), and
//! cargo-fuzz is installed from crates.io when missing. New inputs go to a corpus
//! under the target directory, never into the checked-in seeds.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::workspace::{target_dir, workspace_root};

/// Every target, in the order they run.
pub const TARGETS: [&str; 7] = [
    "wire_binary",
    "wire_envelope",
    "json_payload",
    "api_params",
    "storage_dir",
    "raw_node",
    "stream_frame",
];

/// What to fuzz and for how long.
#[derive(Clone, Debug)]
pub struct FuzzOptions {
    /// Seconds per target.
    pub seconds: u64,
    /// Only these targets (empty: all).
    pub targets: Vec<String>,
}

/// One target's run.
#[derive(Clone, Debug)]
pub struct TargetRun {
    /// The target.
    pub target: String,
    /// Inputs executed.
    pub execs: u64,
    /// Seconds it ran.
    pub seconds: f64,
    /// The crashing input, if it crashed.
    pub crash: Option<String>,
}

fn fail(msg: impl Into<String>) -> String {
    msg.into()
}

/// Installs cargo-fuzz if needed and checks the nightly toolchain.
fn prerequisites() -> Result<(), String> {
    let nightly = Command::new("rustup")
        .args(["run", "nightly", "rustc", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| fail(format!("rustup: {e}")))?;
    if !nightly.success() {
        return Err(fail(
            "the nightly toolchain is missing: `rustup toolchain install nightly` (cargo-fuzz needs it)",
        ));
    }
    let have = Command::new("cargo")
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !have {
        eprintln!("xtask fuzz: installing cargo-fuzz from crates.io");
        let ok = Command::new("cargo")
            .args(["install", "cargo-fuzz", "--locked"])
            .status()
            .map_err(|e| fail(format!("cargo install cargo-fuzz: {e}")))?;
        if !ok.success() {
            return Err(fail("`cargo install cargo-fuzz --locked` failed"));
        }
    }
    Ok(())
}

fn fuzz_cmd(fuzz_dir: &Path) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(fuzz_dir).args(["+nightly", "fuzz"]);
    // The fuzz crate has its own lock file and target directory.
    cmd.env_remove("CARGO_TARGET_DIR");
    cmd
}

/// `stat::number_of_executed_units: N` from libFuzzer's final stats.
fn execs(stderr: &str) -> u64 {
    stderr
        .lines()
        .rev()
        .filter_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
        .find_map(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// The file libFuzzer saved the crashing input to.
fn crash_file(stderr: &str) -> Option<String> {
    stderr
        .lines()
        .find_map(|l| l.split("Test unit written to ").nth(1))
        .map(|s| s.trim().to_string())
}

/// Builds the targets once, then runs each for `seconds`.
///
/// # Errors
/// A missing prerequisite or a failed build, as a message.
pub fn run(opts: &FuzzOptions) -> Result<Vec<TargetRun>, String> {
    prerequisites()?;
    let root = workspace_root();
    let fuzz_dir = root.join("fuzz");
    let targets: Vec<String> = if opts.targets.is_empty() {
        TARGETS.iter().map(|t| t.to_string()).collect()
    } else {
        opts.targets.clone()
    };
    for t in &targets {
        if !TARGETS.contains(&t.as_str()) {
            return Err(fail(format!("unknown fuzz target {t:?} ({})", TARGETS.join(", "))));
        }
    }
    eprintln!(
        "xtask fuzz: building {} targets (nightly, with sanitizers)",
        targets.len()
    );
    let built = fuzz_cmd(&fuzz_dir)
        .args(["build", "--debug-assertions"])
        .status()
        .map_err(|e| fail(format!("cargo fuzz build: {e}")))?;
    if !built.success() {
        return Err(fail("`cargo +nightly fuzz build` failed"));
    }
    let mut runs = Vec::new();
    for t in targets {
        let work: PathBuf = target_dir(&root).join("fuzz-corpus").join(&t);
        std::fs::create_dir_all(&work).map_err(|e| fail(format!("{}: {e}", work.display())))?;
        let seeds = fuzz_dir.join("corpus").join(&t);
        let started = Instant::now();
        let mut cmd = fuzz_cmd(&fuzz_dir);
        // storage_dir makes a data directory per input: in memory when there is a tmpfs.
        if Path::new("/dev/shm").is_dir() {
            cmd.env("TMPDIR", "/dev/shm");
        }
        let out = cmd
            .args(["run", "--debug-assertions", &t])
            .arg(&work)
            .arg(&seeds)
            .args([
                "--",
                &format!("-max_total_time={}", opts.seconds),
                "-rss_limit_mb=2048",
                "-max_len=65536",
                "-print_final_stats=1",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| fail(format!("cargo fuzz run {t}: {e}")))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        let run = TargetRun {
            execs: execs(&stderr),
            seconds: started.elapsed().as_secs_f64(),
            crash: (!out.status.success()).then(|| {
                crash_file(&stderr).unwrap_or_else(|| {
                    let tail: Vec<&str> = stderr.lines().rev().take(30).collect();
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                })
            }),
            target: t,
        };
        println!(
            "xtask fuzz: {:<14} {:>10} execs in {:>5.0} s{}",
            run.target,
            run.execs,
            run.seconds,
            match &run.crash {
                Some(c) => format!("  CRASH: {c}"),
                None => String::new(),
            }
        );
        if run.crash.is_some() {
            eprintln!("{stderr}");
        }
        runs.push(run);
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libfuzzer_stats_and_crash_files_are_read() {
        let err = "#2\tINITED\nstat::number_of_executed_units: 12345\nstat::average_exec_per_sec: 411\n";
        assert_eq!(execs(err), 12345);
        let crash = "==1== ERROR: libFuzzer: deadly signal\nartifact_prefix='a/'; Test unit written to fuzz/artifacts/raw_node/crash-abc\n";
        assert_eq!(crash_file(crash).as_deref(), Some("fuzz/artifacts/raw_node/crash-abc"));
        assert_eq!(crash_file(err), None);
    }

    #[test]
    fn every_target_has_seeds_and_a_source() {
        let fuzz = workspace_root().join("fuzz");
        for t in TARGETS {
            assert!(fuzz.join("fuzz_targets").join(format!("{t}.rs")).is_file(), "{t}.rs");
            let seeds = std::fs::read_dir(fuzz.join("corpus").join(t))
                .map(|d| d.count())
                .unwrap_or(0);
            assert!(seeds > 0, "{t} has no seed inputs");
        }
        let manifest = std::fs::read_to_string(fuzz.join("Cargo.toml")).expect("fuzz/Cargo.toml");
        for t in TARGETS {
            assert!(manifest.contains(&format!("name = \"{t}\"")), "{t} in fuzz/Cargo.toml");
        }
    }
}
