//! What both demos share, the Raft demo and `cargo xtask demo kv|lock|config`
//! ([`crate::services`]): their timing, waiting for a condition, waiting for a leader,
//! restarting a killed node and watching it catch up, and the verdict when a check
//! failed.

use std::fmt::Display;
use std::time::{Duration, Instant};

use easyraft::prelude::*;
use easyraft::{LogStore, Transport};

use crate::error::TaskError;
use crate::ui::{secs, Ui};

/// How long the demos wait for an election, a catch-up or a rejoin.
pub(crate) const WAIT: Duration = Duration::from_secs(15);

/// Timing for a demo on one (possibly busy) machine: elections within about a second.
pub(crate) fn demo_config() -> RaftConfig {
    RaftConfig {
        election_timeout: Duration::from_millis(400),
        heartbeat_interval: Duration::from_millis(50),
        request_timeout: Duration::from_secs(3),
        ..RaftConfig::default()
    }
}

/// Polls `cond` until it holds or `timeout` passes.
pub(crate) async fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> Result<(), ()> {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `FAIL: ` and the checks that failed, joined by `; ` (the demos' verdict when one
/// failed).
pub(crate) fn fail_verdict(checks: &[(String, bool)]) -> String {
    let failed: Vec<&str> = checks.iter().filter(|(_, ok)| !ok).map(|(c, _)| c.as_str()).collect();
    format!("FAIL: {}", failed.join("; "))
}

/// The first election: waits for `cluster`'s leader and says who won, in which term,
/// after how long.
pub(crate) async fn elect<SM, S, T>(ui: &Ui, cluster: &Cluster<SM, S, T>) -> Result<RaftHandle<SM>, TaskError>
where
    SM: StateMachine,
    S: LogStore + Send + 'static,
    T: Transport,
{
    let (leader, took) = ui
        .spin(|| "waiting for the election".into(), cluster.wait_for_leader(WAIT))
        .await;
    let leader = leader?;
    ui.ok(format!(
        "{} won the election for term {} after {}",
        leader.id(),
        leader.view().term,
        secs(took)
    ));
    Ok(leader)
}

/// Waits for the survivors of a killed leader to elect a new one; the new leader and
/// how long it took.
pub(crate) async fn await_new_leader<SM, S, T>(
    ui: &Ui,
    cluster: &Cluster<SM, S, T>,
) -> Result<(RaftHandle<SM>, Duration), TaskError>
where
    SM: StateMachine,
    S: LogStore + Send + 'static,
    T: Transport,
{
    let (leader, took) = ui
        .spin(
            || "waiting for the survivors to elect a new leader".into(),
            cluster.wait_for_leader(WAIT),
        )
        .await;
    Ok((leader?, took))
}

/// Restarts node `id` through `restart`, retrying for up to 5 s while the killed
/// incarnation still holds its data directory's lock or its port.
pub(crate) async fn restart_retrying<R, E: Display>(
    id: &str,
    mut restart: impl AsyncFnMut() -> Result<R, E>,
) -> Result<R, TaskError> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match restart().await {
            Ok(r) => return Ok(r),
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => return Err(format!("cannot restart {id}: {e}").into()),
        }
    }
}

/// Waits until `back` (node `id`, just restarted from its data directory) has applied
/// index `target`, and says what it came back as.
pub(crate) async fn catch_up<SM: StateMachine>(
    ui: &Ui,
    id: &str,
    back: &RaftHandle<SM>,
    target: u64,
) -> Result<(), TaskError> {
    let (caught_up, took) = ui
        .spin(
            || format!("{id} replays its log and fetches what it missed"),
            wait_until(WAIT, || back.view().applied >= target),
        )
        .await;
    caught_up.map_err(|()| format!("{id} did not catch up to index {target}"))?;
    let v = back.view();
    ui.ok(format!(
        "{id} is back as a {} of {} and caught up to index {} in {}",
        v.role,
        v.leader.as_ref().map_or("-", |l| l.as_str()),
        v.applied,
        secs(took)
    ));
    Ok(())
}
