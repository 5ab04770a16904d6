//! `cargo xtask bench compare`: easyraft beside openraft (and beside an older easyraft)
//! on one workload, each run a separate process of `benches`' `cluster_load` binary,
//! interleaved round by round (A, B, C, A, B, C, …) so that a machine that speeds up
//! or slows down during the run shifts every system alike. See docs/testing.md.
//!
//! `cargo xtask bench service` ([`service`]) measures the real server the same way:
//! `easyraft-server` processes beside the in-process ceiling and etcd.

pub mod procs;
pub mod report;
pub mod service;
pub mod strace;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::error::TaskError;
use report::{Row, Sample};

/// The systems `cluster_load --system` knows.
pub const SYSTEMS: [&str; 4] = ["easyraft", "easyraft-file", "openraft10", "openraft09"];

/// What `cargo xtask bench compare` runs.
#[derive(Clone, Debug)]
pub struct CompareOptions {
    /// How many times every (system, clients) pair runs.
    pub rounds: usize,
    /// Concurrent proposers, one table per value.
    pub clients: Vec<usize>,
    /// Systems to run (of [`SYSTEMS`]).
    pub systems: Vec<String>,
    /// Measured seconds per run.
    pub secs: f64,
    /// Warm-up seconds per run, before the measured window.
    pub warmup: f64,
    /// Tokio worker threads, the same for every system.
    pub workers: usize,
    /// A git revision of easyraft to run beside the working tree (before/after).
    pub baseline: Option<String>,
    /// After the rounds, one more run of each pair under `strace -f -c`.
    pub strace: bool,
    /// The workspace root.
    pub root: PathBuf,
    /// The cargo target directory.
    pub target: PathBuf,
}

/// One system as run: its label in the table, the binary and `--system`.
#[derive(Clone, Debug)]
pub struct Contender {
    /// `easyraft`, `openraft10`, or `easyraft@<rev>` for the baseline.
    pub label: String,
    /// The `cluster_load` binary.
    pub binary: PathBuf,
    /// Its `--system`.
    pub system: String,
}

/// Builds, runs every round and prints the tables; `Ok(false)` if a run failed.
pub fn compare(opts: &CompareOptions) -> Result<bool, TaskError> {
    for s in &opts.systems {
        if !SYSTEMS.contains(&s.as_str()) {
            return Err(format!("unknown system {s:?} (one of {})", SYSTEMS.join(", ")).into());
        }
    }
    // The baseline builds in a target directory of its own (`build_baseline` says why),
    // and its binary is copied away beside it.
    let baseline = opts
        .baseline
        .as_ref()
        .map(|rev| build_baseline(opts, rev))
        .transpose()?;
    let current = build_current(opts)?;
    let mut contenders: Vec<Contender> = opts
        .systems
        .iter()
        .map(|s| Contender {
            label: s.clone(),
            binary: current.clone(),
            system: s.clone(),
        })
        .collect();
    if let Some((short, binary)) = baseline {
        for s in opts.systems.iter().filter(|s| s.starts_with("easyraft")) {
            contenders.push(Contender {
                label: format!("{s}@{short}"),
                binary: binary.clone(),
                system: s.clone(),
            });
        }
    }
    let log = opts.target.join("bench-compare.jsonl");
    let mut lines = String::new();
    let mut rows: Vec<Row> = Vec::new();
    let total = opts.rounds * opts.clients.len() * contenders.len();
    let mut n = 0;
    for round in 1..=opts.rounds {
        for &clients in &opts.clients {
            for c in &contenders {
                n += 1;
                eprint!("[{n}/{total}] round {round}: {} with {clients} clients ... ", c.label);
                let (sample, line) = run_once(c, clients, opts, None)?;
                eprintln!(
                    "{:.0} commits/s, p99 {:.2} ms",
                    sample.commits_per_sec,
                    sample.p99_us / 1e3
                );
                lines.push_str(&line);
                lines.push('\n');
                match rows.iter_mut().find(|r| r.label == c.label && r.clients == clients) {
                    Some(r) => r.samples.push(sample),
                    None => rows.push(Row {
                        label: c.label.clone(),
                        clients,
                        samples: vec![sample],
                    }),
                }
            }
        }
    }
    std::fs::write(&log, lines)?;
    println!("{}", report::render(&rows, &opts.clients, opts));
    println!("raw results: {}", log.display());
    if opts.strace {
        let mut counts = Vec::new();
        for &clients in &opts.clients {
            for c in &contenders {
                eprint!("strace: {} with {clients} clients ... ", c.label);
                let out = opts.target.join(format!("bench-strace-{}-{clients}.txt", c.label));
                let (sample, _) = run_once(c, clients, opts, Some(&out))?;
                let calls = strace::parse(&std::fs::read_to_string(&out)?);
                eprintln!("{} ops", sample.total_ops);
                counts.push((c.label.clone(), clients, sample.total_ops, calls));
            }
        }
        println!("{}", strace::render(&counts));
    }
    Ok(true)
}

/// Runs `cluster_load` once (under `strace -f -c -o FILE` when `strace` is given) and
/// returns its sample and its JSON line.
fn run_once(
    c: &Contender,
    clients: usize,
    opts: &CompareOptions,
    strace: Option<&Path>,
) -> Result<(Sample, String), TaskError> {
    let args = [
        "--system".to_owned(),
        c.system.clone(),
        "--clients".to_owned(),
        clients.to_string(),
        "--secs".to_owned(),
        opts.secs.to_string(),
        "--warmup".to_owned(),
        opts.warmup.to_string(),
        "--workers".to_owned(),
        opts.workers.to_string(),
    ];
    let mut cmd = match strace {
        Some(out) => {
            let mut cmd = Command::new("strace");
            cmd.args(["-f", "-c", "-o"]).arg(out).arg(&c.binary);
            cmd
        }
        None => Command::new(&c.binary),
    };
    let output = cmd.args(args).output().map_err(|e| {
        format!(
            "cannot run {}: {e} (strace: install it with apt-get install strace)",
            c.binary.display()
        )
    })?;
    if !output.status.success() {
        return Err(format!(
            "{} --system {} --clients {clients} failed ({}):\n{}",
            c.binary.display(),
            c.system,
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default().to_owned();
    let v: Value = serde_json::from_str(&line).map_err(|e| format!("bad output of cluster_load ({e}): {line}"))?;
    Ok((Sample::from_json(&v), line))
}

fn cargo() -> Command {
    Command::new(crate::workspace::cargo())
}

fn run(cmd: &mut Command, what: &str) -> Result<(), TaskError> {
    let status = cmd.status().map_err(|e| format!("{what}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status})").into())
    }
}

/// `cargo build --release -p benches --bin cluster_load`, with openraft when asked for.
fn build_current(opts: &CompareOptions) -> Result<PathBuf, TaskError> {
    let mut cmd = cargo();
    cmd.current_dir(&opts.root)
        .args(["build", "--release", "-p", "benches", "--bin", "cluster_load"]);
    if opts.systems.iter().any(|s| s.starts_with("openraft")) {
        cmd.args(["--features", "openraft"]);
    }
    run(cmd.env("CARGO_TARGET_DIR", &opts.target), "building cluster_load")?;
    Ok(opts.target.join("release").join("cluster_load"))
}

/// Checks out `rev` in a worktree under the target directory and builds its
/// `cluster_load`; a revision older than `cluster_load` gets today's `benches/` laid
/// over it (it drives the cluster through `Cluster::start` and `RaftHandle::propose`
/// only). Returns the short hash and the binary.
fn build_baseline(opts: &CompareOptions, rev: &str) -> Result<(String, PathBuf), TaskError> {
    let out = Command::new("git")
        .current_dir(&opts.root)
        .args(["rev-parse", "--short=10", &format!("{rev}^{{commit}}")])
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "--baseline {rev}: not a commit: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let short = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let base = opts.target.join("bench-baseline");
    let tree = base.join(&short);
    if !tree.join("Cargo.toml").exists() {
        let _ = std::fs::remove_dir_all(&tree);
        run(
            Command::new("git")
                .current_dir(&opts.root)
                .args(["worktree", "add", "--detach"])
                .arg(&tree)
                .arg(&short),
            "git worktree add",
        )?;
    }
    if !tree.join("benches/src/bin/cluster_load.rs").exists() {
        eprintln!("baseline {short} has no cluster_load: laying today's benches/ over it");
        copy_dir(&opts.root.join("benches"), &tree.join("benches"))?;
    }
    // Not the current tree's target directory: cargo hashes a workspace crate by its
    // path inside the workspace, so both trees' crates would share artifacts, and a
    // crate is rebuilt only when one of its files is newer than its artifact. One
    // tree's older files would then pass for built and run the other tree's code.
    let target = base.join("target");
    run(
        cargo()
            .current_dir(&tree)
            .args(["build", "--release", "-p", "benches", "--bin", "cluster_load"])
            .env("CARGO_TARGET_DIR", &target),
        &format!("building cluster_load at {short}"),
    )?;
    let binary = base.join(format!("cluster_load-{short}"));
    std::fs::copy(target.join("release").join("cluster_load"), &binary)?;
    Ok((short, binary))
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let dest = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &dest)?;
        } else {
            std::fs::copy(e.path(), dest)?;
        }
    }
    Ok(())
}
