//! `cargo xtask`: see the library's documentation. The commands' arguments and how
//! they start the library's tasks are in [`cli`], one file per command.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// easyraft's developer tasks.
#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Start a real Raft cluster over WebSocket (or --transport jsonrpc) on 127.0.0.1
    /// and put it through an election, replication, a leader crash, a restart from disk
    /// and a network partition; finish with a verdict checked on every node.
    ///
    /// `cargo xtask demo kv|lock|config` runs one of the example services instead: a
    /// 3-node cluster serving its JSON-RPC API, used over HTTP like `curl` would,
    /// through a leader crash.
    ///
    /// Logs go to stderr at level `warn`; set RUST_LOG (e.g. RUST_LOG=info) for more.
    Demo(cli::demo::DemoArgs),
    /// Whole-system chaos: node processes, concurrent clients recording a history,
    /// SIGKILL / SIGSTOP / partitions / loss / one-way cuts / clock skew / membership
    /// churn / disk faults chosen by a seeded RNG, then the history checked
    /// for linearizability and lost acknowledged writes. Exits non-zero on a violation.
    Chaos(cli::chaos::ChaosArgs),
    /// One node of `cargo xtask chaos` (started by it).
    #[command(hide = true)]
    ChaosNode(cli::chaos::ChaosNodeArgs),
    /// Fuzz everything read from the network or the disk: each cargo-fuzz target in
    /// `fuzz/` (wire decoders, JSON payloads, the services' params, a mutated data
    /// directory, the core fed any messages) for `--seconds`, from the checked-in
    /// seeds. Installs cargo-fuzz if missing (needs the nightly toolchain). Exits
    /// non-zero on a crash, naming the input.
    Fuzz(cli::fuzz::FuzzArgs),
    /// Run the whole test suite on a fresh machine: install what it needs (etcd, a
    /// Python virtual environment with `websockets`), run every test (cargo-nextest
    /// when installed, else cargo test), the doctests, the benches in test mode and
    /// curl against a real `kv` cluster; end with one summary line.
    Test(cli::test::TestArgs),
    /// Run the criterion benches: `cargo bench -p benches [ARGS...]`.
    ///
    /// `cargo xtask bench compare [--rounds 5] [--clients 1,256,1024] [--baseline REV]
    /// [--strace]` runs easyraft (MemStorage and FileStorage), openraft 0.10 and 0.9 on
    /// one workload, interleaved, and prints commits/s and p99 with the ratios
    /// (`cargo xtask bench compare --help` for every option; docs/testing.md).
    ///
    /// `cargo xtask bench service [--rounds 3] [--clients 1,16,256,1024] [--ops put,get]`
    /// runs 3 easyraft-server processes, the in-process ceiling and 3 etcd members,
    /// interleaved, under one HTTP load generator, and prints ops/s and p99 with the
    /// ratios (`cargo xtask bench service --help`).
    #[command(verbatim_doc_comment)]
    Bench {
        /// Passed to `cargo bench -p benches` (e.g. `--bench core`, `-- --test`), or
        /// `compare ...`, or `service ...`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> ExitCode {
    match Cli::parse().task {
        Task::Demo(a) => cli::demo::run(a),
        Task::Chaos(a) => cli::chaos::run(a),
        Task::ChaosNode(a) => cli::chaos::run_node(a),
        Task::Fuzz(a) => cli::fuzz::run(a),
        Task::Test(a) => cli::test::run(a),
        Task::Bench { args } => cli::bench::run(args),
    }
}
