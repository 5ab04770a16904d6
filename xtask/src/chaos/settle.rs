//! After the faults: every key read once more into the history, and every member
//! checked to have caught up with the leader.

use std::time::{Duration, Instant};

use easyraft_linearizability::{Call, Op, Outcome, Ret};

use super::client::{self, Shared};
use super::procs::Procs;

/// How long the cluster may take to elect a leader, or to answer every read and
/// catch up after healing (a loaded 2-core machine).
pub(super) const ELECTION: Duration = Duration::from_secs(30);

/// Every member's applied index must reach the leader's commit index (as read after
/// the final reads) within [`ELECTION`]: a node that never recovers from its faults is
/// reported. Returns the members that did not.
pub(super) async fn caught_up(procs: &Procs, shared: &Shared) -> Vec<String> {
    let deadline = Instant::now() + ELECTION;
    let status = |id: String| async move {
        let port = shared.ports.get(&id).copied().unwrap_or(0);
        client::call(port, &shared.token, "admin_status", &serde_json::json!({})).await
    };
    let mut target = None;
    let mut behind: Vec<String> = procs.members();
    while Instant::now() < deadline && !behind.is_empty() {
        if target.is_none() {
            if let Some(l) = procs.leader() {
                target = status(l).await.and_then(|v| v["commit"].as_u64());
            }
        }
        if let Some(commit) = target {
            let mut still = Vec::new();
            for id in behind {
                let applied = status(id.clone()).await.and_then(|v| v["applied"].as_u64());
                if applied.is_none_or(|a| a < commit) {
                    still.push(id);
                }
            }
            behind = still;
        }
        if !behind.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    behind
        .into_iter()
        .map(|id| format!("{id} did not catch up with the leader's commit index within {ELECTION:?} after healing"))
        .collect()
}

/// Reads every key once more (on the leader, retried until answered); the reads join
/// the history, so a lost acknowledged write makes it non-linearizable. `Err(key)`
/// when a key cannot be read.
pub(super) async fn final_reads(procs: &Procs, shared: &Shared, keys: &[String]) -> Result<Vec<Op>, String> {
    let deadline = Instant::now() + ELECTION;
    let mut reads = Vec::new();
    for key in keys {
        loop {
            let leader = procs.leader().unwrap_or_default();
            let invoke = shared.now();
            if let Some(value) = client::get(shared, &leader, key).await {
                reads.push(Op {
                    client: usize::MAX,
                    key: key.clone(),
                    call: Call::Get,
                    invoke,
                    outcome: Outcome::Ok {
                        complete: shared.now(),
                        ret: Ret::Get { value },
                    },
                    final_read: true,
                });
                break;
            }
            if Instant::now() > deadline {
                return Err(key.clone());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(reads)
}
