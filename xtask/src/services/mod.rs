//! `cargo xtask demo kv|lock|config`: one of the `examples` services (a KV store, a
//! distributed lock, a configuration center) as a real 3-node cluster on loopback
//! (JSON-RPC transport, file storage in a temp dir), used over HTTP JSON-RPC exactly
//! as `curl` would, through a leader crash and a restart, then checked.
//!
//! Every call the demo makes is an HTTP `POST` of a JSON-RPC 2.0 request with the
//! cluster token, written by hand on a TCP socket ([`crate::http::post_json`]): what
//! it prints is what a user's `curl` sends and gets back.
//!
//! The pieces: the steps every service takes (`ctx`), the client (`rpc`), and each
//! service's own steps 3 to 6 (`kv`, `lock`, `config`).

mod config;
mod ctx;
mod kv;
mod lock;
mod options;
mod rpc;

pub use options::{Service, ServiceOptions, ServiceReport};

use std::time::{Duration, Instant};

use easyraft::StateMachine;
use examples::runner::{ApiBuilder, LocalCluster, TOKEN};

use self::ctx::{Ctx, Scenario, STEPS};
pub use self::rpc::curl;
use self::rpc::Rpc;
use crate::demo::common::{demo_config, elect, fail_verdict};
use crate::error::TaskError;

/// Runs the service demo, printing as it goes.
pub async fn run(opts: ServiceOptions) -> Result<ServiceReport, TaskError> {
    match opts.service {
        Service::Kv => drive(opts, examples::kv::rpc, kv::boxed).await,
        Service::Lock => drive(opts, examples::lock::rpc, lock::boxed).await,
        Service::Config => drive(opts, examples::config::rpc, config::boxed).await,
    }
}

/// Steps 1 and 2 (start, elect), the service's own steps 3 to 6, the verdict.
async fn drive<SM: StateMachine + Default>(
    opts: ServiceOptions,
    api: ApiBuilder<SM>,
    scenario: Scenario<SM>,
) -> Result<ServiceReport, TaskError> {
    let started = Instant::now();
    let ui = opts.ui;
    let n = opts.nodes;
    if n < 3 || n % 2 == 0 {
        return Err(format!("--nodes must be odd and at least 3 (got {n})").into());
    }
    let service = opts.service;
    println!(
        "{}",
        ui.bold(&format!(
            "easyraft demo: {}, {n} nodes on 127.0.0.1, used over HTTP JSON-RPC",
            service.title()
        ))
    );

    // 1. Start.
    ui.step(1, STEPS, "Start the nodes");
    let data = tempfile::Builder::new()
        .prefix(&format!("easyraft-{}-", service.name()))
        .tempdir()?;
    let local = LocalCluster::start(n, Some(data.path().to_path_buf()), demo_config(), api).await?;
    let rpc = Rpc::new(local.ports.clone(), TOKEN);
    let (method, params) = service.sample();
    for (id, port) in &local.ports {
        ui.line(format!(
            "{id}  http://127.0.0.1:{port}/   the {} API ({}_*) over HTTP JSON-RPC (Raft: port {})",
            service.name(),
            service.name(),
            local.raft_ports.get(id).copied().unwrap_or(0)
        ));
        ui.line(ui.dim(&format!("  {}", curl(TOKEN, *port, method, &params))));
    }
    ui.note(format!(
        "storage: FileStorage (fsync on every append) under {}; every request needs `Authorization: Bearer {TOKEN}`",
        data.path().display()
    ));
    ui.note("every call below is an HTTP POST of one JSON-RPC 2.0 request, as the curl lines above send it");
    if !opts.hold {
        ui.note(format!(
            "`cargo xtask demo {} --hold` keeps the cluster up after the verdict, to paste those lines",
            service.name()
        ));
    }

    // 2. Election.
    ui.step(2, STEPS, "Elect a leader");
    let leader = elect(&ui, &local.cluster).await?;
    rpc.set_leader(leader.id().as_str());

    let mut ctx = Ctx {
        ui,
        opts: opts.clone(),
        local,
        rpc,
        checks: Vec::new(),
    };
    let summary = scenario(&mut ctx).await;
    let mut report = ServiceReport {
        passed: false,
        verdict: String::new(),
        checks: std::mem::take(&mut ctx.checks),
        elapsed: Duration::ZERO,
    };
    match summary {
        Ok(summary) => {
            report.passed = !report.checks.is_empty() && report.checks.iter().all(|(_, ok)| *ok);
            report.verdict = if report.passed {
                format!("PASS: {summary}")
            } else {
                fail_verdict(&report.checks)
            };
        }
        Err(e) => {
            ui.bad(format!("the demo stopped early: {e}"));
            report.verdict = format!("FAIL: the demo stopped early: {e}");
        }
    }
    report.elapsed = started.elapsed();
    ui.verdict(report.passed, &report.verdict, report.elapsed);
    if opts.hold {
        println!();
        println!("The cluster keeps running; try it (Ctrl-C stops it):");
        for port in ctx.local.ports.values() {
            println!("  {}", curl(TOKEN, *port, method, &params));
        }
        let _ = tokio::signal::ctrl_c().await;
    }
    ctx.local.cluster.stop().await;
    drop(data);
    Ok(report)
}
