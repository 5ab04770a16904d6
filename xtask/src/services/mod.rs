//! `cargo xtask demo kv|lock|config`: one of the `examples` services (a KV store, a
//! distributed lock, a configuration center) as a real 3-node cluster on loopback
//! (JSON-RPC transport, file storage in a temp dir), used over HTTP JSON-RPC exactly
//! as `curl` would, through a leader crash and a restart, then checked.
//!
//! Every call the demo makes is an HTTP `POST` of a JSON-RPC 2.0 request with the
//! cluster token, written by hand on a TCP socket ([`crate::http::post_json`]): what
//! it prints is what a user's `curl` sends and gets back.

mod config;
mod kv;
mod lock;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use easyraft::{RaftHandle, StateMachine};
use examples::api::{BACKPRESSURE, NOT_APPLIED, NOT_LEADER, UNAVAILABLE, UNKNOWN_OUTCOME};
use examples::runner::{ApiBuilder, LocalCluster, TOKEN};
use serde_json::{json, Value};

use crate::demo::{demo_config, wait_until, DemoError};
use crate::http;
use crate::ui::{secs, Ui};

/// Which service `cargo xtask demo SERVICE` runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// The replicated key-value store (`kv_put`, `kv_get`, `kv_cas`, `kv_scan`, ...).
    Kv,
    /// The distributed lock with fencing tokens (`lock_acquire`, `lock_renew`, ...).
    Lock,
    /// The configuration center with versions and watches (`config_set`, ...).
    Config,
}

impl Service {
    fn title(self) -> &'static str {
        match self {
            Service::Kv => "the replicated key-value store (examples::kv)",
            Service::Lock => "the distributed lock service (examples::lock)",
            Service::Config => "the configuration center (examples::config)",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Service::Kv => "kv",
            Service::Lock => "lock",
            Service::Config => "config",
        }
    }

    /// A read to paste: the method and its params.
    fn sample(self) -> (&'static str, Value) {
        match self {
            Service::Kv => ("kv_get", json!({"key": "greeting"})),
            Service::Lock => ("lock_holder", json!({"name": "orders"})),
            Service::Config => ("config_list", json!({"prefix": "app/"})),
        }
    }
}

/// What `cargo xtask demo SERVICE` runs.
#[derive(Clone, Debug)]
pub struct ServiceOptions {
    /// The service.
    pub service: Service,
    /// Cluster size: 3, 5 or 7.
    pub nodes: usize,
    /// The kv demo's writes during the leader kill (other services ignore it).
    pub writes: usize,
    /// Output.
    pub ui: Ui,
    /// Keep the cluster running after the verdict until Ctrl-C (to try the `curl`s).
    pub hold: bool,
}

impl ServiceOptions {
    /// Defaults for `service`: 3 nodes, plain output.
    pub fn new(service: Service) -> Self {
        ServiceOptions {
            service,
            nodes: 3,
            writes: 80,
            ui: Ui::plain(),
            hold: false,
        }
    }
}

/// The outcome.
#[derive(Clone, Debug)]
pub struct ServiceReport {
    /// Whether every check passed.
    pub passed: bool,
    /// The one-line verdict.
    pub verdict: String,
    /// The checks and whether each passed.
    pub checks: Vec<(String, bool)>,
    /// Wall time of the whole demo.
    pub elapsed: Duration,
}

pub(crate) const STEPS: usize = 6;
const WAIT: Duration = Duration::from_secs(15);
/// How long one call may take, unless it long-polls.
const CALL: Duration = Duration::from_secs(6);

/// Runs the service demo, printing as it goes.
pub async fn run(opts: ServiceOptions) -> Result<ServiceReport, DemoError> {
    match opts.service {
        Service::Kv => drive(opts, examples::kv::rpc, kv::boxed).await,
        Service::Lock => drive(opts, examples::lock::rpc, lock::boxed).await,
        Service::Config => drive(opts, examples::config::rpc, config::boxed).await,
    }
}

/// A service's steps 3 to 6; its `Ok` is the verdict's summary.
pub(crate) type Outcome<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, DemoError>> + 'a>>;
type Scenario<SM> = fn(&mut Ctx<SM>) -> Outcome<'_>;

/// Steps 1 and 2 (start, elect), the service's own steps 3 to 6, the verdict.
async fn drive<SM: StateMachine + Default>(
    opts: ServiceOptions,
    api: ApiBuilder<SM>,
    scenario: Scenario<SM>,
) -> Result<ServiceReport, DemoError> {
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
    let (leader, took) = ui
        .spin(
            || "waiting for the election".into(),
            local.cluster.wait_for_leader(WAIT),
        )
        .await;
    let leader = leader?;
    ui.ok(format!(
        "{} won the election for term {} after {}",
        leader.id(),
        leader.view().term,
        secs(took)
    ));
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
                crate::demo::fail_verdict(&report.checks)
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

/// A JSON-RPC 2.0 request body, members in the usual order.
fn request(method: &str, params: &Value) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":{},"params":{params}}}"#,
        json!(method)
    )
}

/// A `curl` line for `method(params)` on `port`.
pub fn curl(token: &str, port: u16, method: &str, params: &Value) -> String {
    let body = request(method, params);
    format!(
        "curl -s -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' -d '{body}' http://127.0.0.1:{port}/"
    )
}

/// What a scenario works with.
pub(crate) struct Ctx<SM: StateMachine> {
    pub(crate) ui: Ui,
    pub(crate) opts: ServiceOptions,
    pub(crate) local: LocalCluster<SM>,
    pub(crate) rpc: Rpc,
    checks: Vec<(String, bool)>,
}

impl<SM: StateMachine + Default> Ctx<SM> {
    /// Records a check and prints it.
    pub(crate) fn check(&mut self, ok: bool, what: impl Into<String>) -> bool {
        let what = what.into();
        if ok {
            self.ui.ok(&what);
        } else {
            self.ui.bad(&what);
        }
        self.checks.push((what, ok));
        ok
    }

    /// The current leader (waiting for one).
    pub(crate) async fn leader(&self) -> Result<RaftHandle<SM>, DemoError> {
        let l = self.local.cluster.wait_for_leader(WAIT).await?;
        self.rpc.set_leader(l.id().as_str());
        Ok(l)
    }

    /// The running nodes other than `id`.
    pub(crate) fn others(&self, id: &str) -> Vec<String> {
        self.local
            .cluster
            .nodes()
            .map(|h| h.id().to_string())
            .filter(|n| n != id)
            .collect()
    }

    /// Kills `id` like a crash (its task aborted where it stands).
    pub(crate) async fn kill(&mut self, id: &str) {
        self.local.kill(id).await;
        self.ui.line(format!(
            "killed {id}: its task aborted where it stood, like a crash; nothing flushed"
        ));
    }

    /// Waits for the survivors to elect a leader after `old` (of term `old_term`) died.
    pub(crate) async fn new_leader(&self, old: &str, old_term: u64) -> Result<RaftHandle<SM>, DemoError> {
        let (leader, took) = self
            .ui
            .spin(
                || "waiting for the survivors to elect a new leader".into(),
                self.local.cluster.wait_for_leader(WAIT),
            )
            .await;
        let leader = leader?;
        self.ui.ok(format!(
            "{} elected for term {} after {} (the dead leader {old}'s term was {old_term})",
            leader.id(),
            leader.view().term,
            secs(took)
        ));
        self.rpc.set_leader(leader.id().as_str());
        Ok(leader)
    }

    /// Step 5: restarts `id` from its data directory and waits until it caught up.
    pub(crate) async fn restart(&mut self, id: &str) -> Result<(), DemoError> {
        self.ui.step(5, STEPS, &format!("Restart {id} from its data directory"));
        let target = self.leader().await?.view().commit;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.local.restart(id).await {
                Ok(()) => break,
                Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(e) => return Err(format!("cannot restart {id}: {e}").into()),
            }
        }
        let back = self
            .local
            .cluster
            .node(id)
            .cloned()
            .ok_or_else(|| format!("{id} is not running"))?;
        let (caught_up, took) = self
            .ui
            .spin(
                || format!("{id} replays its log and fetches what it missed"),
                wait_until(WAIT, || back.view().applied >= target),
            )
            .await;
        caught_up.map_err(|()| format!("{id} did not catch up to index {target}"))?;
        let v = back.view();
        self.ui.ok(format!(
            "{id} is back as a {} of {} and caught up to index {} in {}",
            v.role,
            v.leader.as_ref().map_or("-", |l| l.as_str()),
            v.applied,
            secs(took)
        ));
        Ok(())
    }
}

/// Why a call failed.
#[derive(Clone, Debug)]
pub(crate) enum CallError {
    /// The node answered with a JSON-RPC error object.
    Rpc {
        /// The error code.
        code: i64,
        /// The message.
        message: String,
        /// The data, or `Null`.
        data: Value,
    },
    /// No JSON-RPC answer: connection refused or reset, timeout, not JSON.
    Net(String),
}

impl CallError {
    pub(crate) fn code(&self) -> Option<i64> {
        match self {
            CallError::Rpc { code, .. } => Some(*code),
            CallError::Net(_) => None,
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Rpc { code, message, data } if data.is_null() => write!(f, "error {code} {message:?}"),
            CallError::Rpc { code, message, data } => write!(f, "error {code} {message:?} data {data}"),
            CallError::Net(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for CallError {}

/// A JSON-RPC client over HTTP, one connection per call as `curl` makes, that can
/// follow the services' redirects to the leader.
#[derive(Clone)]
pub(crate) struct Rpc {
    ports: Arc<BTreeMap<String, u16>>,
    token: String,
    leader: Arc<Mutex<String>>,
}

impl Rpc {
    fn new(ports: BTreeMap<String, u16>, token: &str) -> Self {
        let first = ports.keys().next().cloned().unwrap_or_default();
        Rpc {
            ports: Arc::new(ports),
            token: token.to_string(),
            leader: Arc::new(Mutex::new(first)),
        }
    }

    fn set_leader(&self, id: &str) {
        if let Ok(mut l) = self.leader.lock() {
            *l = id.to_string();
        }
    }

    fn leader_guess(&self) -> String {
        self.leader.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Node `id`'s JSON-RPC address.
    pub(crate) fn addr(&self, id: &str) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports.get(id).copied().unwrap_or(0)))
    }

    /// One call on node `id`: its `result`, or why there is none.
    pub(crate) async fn call(
        &self,
        id: &str,
        method: &str,
        params: &Value,
        timeout: Duration,
    ) -> Result<Value, CallError> {
        let body = request(method, params);
        let (status, text) = http::post_json(self.addr(id), &body, Some(&self.token), timeout)
            .await
            .map_err(|e| CallError::Net(e.to_string()))?;
        let v: Value =
            serde_json::from_str(&text).map_err(|_| CallError::Net(format!("HTTP {status}: {}", text.trim())))?;
        if let Some(e) = v.get("error") {
            return Err(CallError::Rpc {
                code: e["code"].as_i64().unwrap_or(0),
                message: e["message"].as_str().unwrap_or("").to_string(),
                data: e.get("data").cloned().unwrap_or(Value::Null),
            });
        }
        Ok(v.get("result").cloned().unwrap_or(Value::Null))
    }

    /// [`Rpc::call`], printing the call and the answer.
    pub(crate) async fn show(&self, ui: &Ui, id: &str, method: &str, params: &Value) -> Result<Value, CallError> {
        let timeout = long_poll(params).unwrap_or(CALL);
        ui.line(format!("→ {id}  {method} {params}"));
        let r = self.call(id, method, params, timeout).await;
        match &r {
            Ok(v) => ui.line(ui.dim(&format!("  ← {v}"))),
            Err(e) => ui.line(ui.yellow(&format!("  ← {e}"))),
        }
        r
    }

    /// Calls `method` on the leader: follows -32020 hints, tries the next node when one
    /// does not answer or is not ready, and (only if `idempotent`) retries a call whose
    /// outcome is unknown. Prints the call that was answered when `ui` is given.
    pub(crate) async fn to_leader(
        &self,
        ui: Option<&Ui>,
        method: &str,
        params: &Value,
        idempotent: bool,
    ) -> Result<(String, Value), CallError> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let ids: Vec<String> = self.ports.keys().cloned().collect();
        let timeout = long_poll(params).unwrap_or(CALL);
        let mut hops: Vec<String> = Vec::new();
        loop {
            let id = self.leader_guess();
            let r = self.call(&id, method, params, timeout).await;
            let next = match &r {
                Ok(_) => None,
                Err(CallError::Rpc { code, data, .. }) if *code == i64::from(NOT_LEADER) => Some(
                    data["leader"]
                        .as_str()
                        .filter(|l| self.ports.contains_key(*l) && *l != id)
                        .map(str::to_string),
                ),
                Err(CallError::Rpc { code, .. })
                    if *code == i64::from(UNAVAILABLE)
                        || *code == i64::from(NOT_APPLIED)
                        || *code == i64::from(BACKPRESSURE) =>
                {
                    Some(None)
                }
                Err(CallError::Rpc { code, .. }) if *code == i64::from(UNKNOWN_OUTCOME) && idempotent => Some(None),
                Err(CallError::Net(_)) => Some(None),
                Err(CallError::Rpc { .. }) => None,
            };
            let Some(hint) = next else {
                if let Some(ui) = ui {
                    let via = if hops.is_empty() {
                        String::new()
                    } else {
                        format!("   (after {})", hops.join(", "))
                    };
                    ui.line(format!("→ {id}  {method} {params}{}", ui.dim(&via)));
                    match &r {
                        Ok(v) => ui.line(ui.dim(&format!("  ← {v}"))),
                        Err(e) => ui.line(ui.yellow(&format!("  ← {e}"))),
                    }
                }
                return r.map(|v| (id, v));
            };
            if Instant::now() > deadline {
                return r.map(|v| (id, v));
            }
            if let Err(e) = &r {
                hops.push(match e.code() {
                    Some(c) => format!("{id}: {c}"),
                    None => format!("{id}: no answer"),
                });
            }
            let pos = ids.iter().position(|i| *i == id).unwrap_or(0);
            let pause = hint.is_none();
            let to = hint.unwrap_or_else(|| ids[(pos + 1) % ids.len()].clone());
            // Only move the shared guess if nobody moved it meanwhile.
            if let Ok(mut l) = self.leader.lock() {
                if *l == id {
                    *l = to;
                }
            }
            if pause {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// The HTTP timeout for a call that long-polls (`timeout_ms` or `wait_ms`).
fn long_poll(params: &Value) -> Option<Duration> {
    let ms = params
        .get("timeout_ms")
        .or_else(|| params.get("wait_ms"))
        .and_then(Value::as_u64)?;
    Some(Duration::from_millis(ms) + CALL)
}
