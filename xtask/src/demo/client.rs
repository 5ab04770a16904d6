//! The write phases and the client they write through.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use easyraft::prelude::*;

use super::common::WAIT;
use crate::error::TaskError;
use crate::ui::{secs, Ui};
use examples::kv::{KvCommand, KvStore as Kv};

/// Writes `count` keys `tag-000...` through `client`, four at a time; returns the
/// acknowledged `(key, value)` pairs.
pub(super) async fn write_phase(
    ui: &Ui,
    client: &Client,
    tag: &str,
    count: usize,
) -> Result<Vec<(String, String)>, TaskError> {
    const LANES: usize = 4;
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for lane in 0..LANES {
        let client = client.clone();
        let done = done.clone();
        let tag = tag.to_string();
        tasks.spawn(async move {
            let mut acked = Vec::new();
            for i in (lane..count).step_by(LANES) {
                let (key, value) = (format!("{tag}-{i:03}"), format!("{tag} value {i}"));
                client.put(&key, &value).await?;
                acked.push((key, value));
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, TaskError>(acked)
        });
    }
    let all = async {
        let mut all = Vec::new();
        while let Some(r) = tasks.join_next().await {
            all.extend(r??);
        }
        Ok::<_, TaskError>(all)
    };
    let (all, took) = ui
        .spin(
            || format!("writing {}/{count} keys {tag}-*", done.load(Ordering::Relaxed)),
            all,
        )
        .await;
    let mut all = all?;
    all.sort();
    let rate = count as f64 / took.as_secs_f64().max(1e-6);
    let retried = client.retries.load(Ordering::Relaxed);
    let retried = if retried > 0 {
        format!("; {retried} tries redirected or retried")
    } else {
        String::new()
    };
    ui.ok(format!(
        "{count} writes ({tag}-000..{tag}-{:03}) acknowledged by {} in {} ({rate:.0} writes/s{retried})",
        count.saturating_sub(1),
        client.leader_id(),
        secs(took)
    ));
    Ok(all)
}

/// A client that sends writes to the leader, follows `NotLeader` hints and retries
/// (writes are idempotent `Set`s, so a retry after a timeout is safe).
#[derive(Clone)]
pub(super) struct Client {
    nodes: Arc<Vec<RaftHandle<Kv>>>,
    leader: Arc<AtomicUsize>,
    retries: Arc<AtomicUsize>,
}

impl Client {
    pub(super) fn new<'a>(nodes: impl IntoIterator<Item = &'a RaftHandle<Kv>>, leader: &NodeId) -> Self {
        let nodes: Vec<RaftHandle<Kv>> = nodes.into_iter().cloned().collect();
        let i = nodes.iter().position(|h| h.id() == leader).unwrap_or(0);
        Client {
            nodes: Arc::new(nodes),
            leader: Arc::new(AtomicUsize::new(i)),
            retries: Arc::default(),
        }
    }

    fn leader_id(&self) -> &NodeId {
        self.nodes[self.leader.load(Ordering::Relaxed)].id()
    }

    async fn put(&self, key: &str, value: &str) -> Result<(), TaskError> {
        let deadline = Instant::now() + WAIT;
        loop {
            let i = self.leader.load(Ordering::Relaxed);
            let cmd = KvCommand::Put {
                key: key.to_string(),
                value: value.to_string(),
            };
            let e = match self.nodes[i].propose(cmd).await {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            if Instant::now() > deadline {
                return Err(format!("the write of {key} was not acknowledged: {e}").into());
            }
            self.retries.fetch_add(1, Ordering::Relaxed);
            let hinted = e
                .leader_hint()
                .and_then(|l| self.nodes.iter().position(|h| h.id() == l));
            let next = hinted.unwrap_or((i + 1) % self.nodes.len());
            let _ = self
                .leader
                .compare_exchange(i, next, Ordering::Relaxed, Ordering::Relaxed);
            if hinted.is_none() || next == i {
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
    }
}
