//! The closed-loop workload of `cluster_load` (and so of `cargo xtask bench compare`):
//! `clients` concurrent proposers, each proposing one small command to the leader and
//! waiting for it to be committed and applied before proposing the next, for a warm-up
//! and then a measured window. The same driver runs every system, so the only thing
//! that differs between easyraft and openraft is the [`Proposer`] behind it; and
//! `service_load` (`cargo xtask bench service`) drives real server processes over
//! HTTP with it ([`service`]).

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub mod easyraft;
pub mod multi;
#[cfg(feature = "openraft")]
pub mod openraft09;
#[cfg(feature = "openraft")]
pub mod openraft10;
pub mod service;

/// Bytes in one proposed command: the same for every system.
pub const COMMAND_BYTES: usize = 16;

/// The `i`th client's command: distinct per client, so no system can deduplicate.
pub fn command(client: usize) -> [u8; COMMAND_BYTES] {
    let mut c = [0u8; COMMAND_BYTES];
    c[..8].copy_from_slice(&(client as u64).to_le_bytes());
    c
}

/// One client's connection to a cluster: `propose` returns once the command is
/// committed and applied on the leader (its reply came back), or once it failed.
pub trait Proposer: Send + 'static {
    /// Proposes one command (or runs one operation) and waits for its outcome: `true`
    /// when it was acknowledged, `false` when it failed (counted in
    /// [`LoadStats::errors`], not as a commit; the proposer paces its own retry).
    fn propose(&mut self) -> impl Future<Output = bool> + Send;
}

/// What one run measured.
#[derive(Clone, Debug, Default)]
pub struct LoadStats {
    /// Proposals acknowledged within the measured window.
    pub commits: u64,
    /// The measured window.
    pub window: Duration,
    /// Every acknowledged proposal, warm-up included (to divide syscall counts by).
    pub total_ops: u64,
    /// Proposals that failed, warm-up included.
    pub errors: u64,
    /// Latency percentiles of the proposals acknowledged within the window.
    pub p50: Duration,
    /// See [`LoadStats::p50`].
    pub p99: Duration,
}

impl LoadStats {
    /// Acknowledged proposals per second over the window.
    pub fn commits_per_sec(&self) -> f64 {
        self.commits as f64 / self.window.as_secs_f64().max(1e-9)
    }
}

/// The `p` quantile (0..=1) of sorted latencies (nearest rank); zero when empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// Runs `clients` proposers made by `make` for `warmup`, then measures for `window`.
/// A proposal counts when it completes inside the window; its latency is recorded then.
pub async fn drive<P: Proposer>(
    clients: usize,
    warmup: Duration,
    window: Duration,
    make: impl FnMut(usize) -> P,
) -> LoadStats {
    drive_all((0..clients).map(make).collect(), warmup, window).await
}

/// [`drive`] with proposers made beforehand (connected, say).
pub async fn drive_all<P: Proposer>(proposers: Vec<P>, warmup: Duration, window: Duration) -> LoadStats {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let from = start + warmup;
    let to = from + window;
    let tasks: Vec<_> = proposers
        .into_iter()
        .map(|mut p| {
            let stop = stop.clone();
            tokio::spawn(async move {
                let (mut total, mut errors, mut lat) = (0u64, 0u64, Vec::new());
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let acknowledged = p.propose().await;
                    let done = Instant::now();
                    if !acknowledged {
                        errors += 1;
                    } else {
                        total += 1;
                        if done < to && done >= from {
                            lat.push(done - t);
                        }
                    }
                    if done >= to {
                        break;
                    }
                }
                (total, errors, lat)
            })
        })
        .collect();
    tokio::time::sleep_until((to).into()).await;
    // Clients that are waiting stop after their proposal in flight.
    stop.store(true, Ordering::Relaxed);
    let mut stats = LoadStats {
        window,
        ..LoadStats::default()
    };
    let mut all = Vec::new();
    for t in tasks {
        let (total, errors, lat) = t.await.expect("client task");
        stats.total_ops += total;
        stats.errors += errors;
        all.extend(lat);
    }
    all.sort_unstable();
    stats.commits = all.len() as u64;
    stats.p50 = percentile(&all, 0.50);
    stats.p99 = percentile(&all, 0.99);
    stats
}
