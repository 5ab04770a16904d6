//! Which service the services demo runs and how ([`Service`], [`ServiceOptions`]),
//! and what it reports ([`ServiceReport`]).

use std::time::Duration;

use serde_json::{json, Value};

use crate::ui::Ui;

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
    pub(super) fn title(self) -> &'static str {
        match self {
            Service::Kv => "the replicated key-value store (examples::kv)",
            Service::Lock => "the distributed lock service (examples::lock)",
            Service::Config => "the configuration center (examples::config)",
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Service::Kv => "kv",
            Service::Lock => "lock",
            Service::Config => "config",
        }
    }

    /// A read to paste: the method and its params.
    pub(super) fn sample(self) -> (&'static str, Value) {
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
