//! Clients: one that follows leader hints and retries until acknowledged, and
//! sequential writers built on it.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use raft_cluster::Error;
use raft_core::{LogIndex, NodeId, Role};
use tokio::task::JoinHandle;
use tokio::time::{sleep, Instant};

use super::{lock, Node, Nodes, Put, PATIENCE};

/// A write a client saw acknowledged.
#[derive(Clone, Debug)]
pub struct Ack {
    pub id: u64,
    pub key: String,
    pub value: u64,
    pub index: LogIndex,
}

/// Sequential writers running in the background.
pub struct Writers {
    tasks: Vec<JoinHandle<u64>>,
    stop: Arc<AtomicBool>,
}

impl Writers {
    /// Starts one sequential writer per number in `writers` (see [`Put::new`]), each
    /// making up to `per_client` acknowledged writes through `client`.
    pub fn spawn(client: Client, writers: Vec<u64>, per_client: u64) -> Writers {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = writers
            .into_iter()
            .map(|writer| {
                let client = client.clone();
                let stop = stop.clone();
                tokio::spawn(async move {
                    let mut done = 0;
                    for seq in 1..=per_client {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        client.put(Put::new(writer, seq)).await;
                        done += 1;
                    }
                    done
                })
            })
            .collect();
        Writers { tasks, stop }
    }

    /// Asks the writers to stop after their current write.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Waits for every writer; returns how many writes were acknowledged.
    pub async fn join(self) -> u64 {
        let mut total = 0;
        for t in self.tasks {
            total += t.await.expect("writer task");
        }
        total
    }
}

/// A client that finds the leader (hints, then views, then round robin) and retries
/// until its write is acknowledged, keeping the write's id.
#[derive(Clone)]
pub struct Client {
    nodes: Nodes,
    only: Option<BTreeSet<NodeId>>,
    acked: Arc<Mutex<Vec<Ack>>>,
    turn: Arc<AtomicUsize>,
}

impl Client {
    /// A client over `nodes` that records its acknowledged writes in `acked`.
    pub fn new(nodes: Nodes, acked: Arc<Mutex<Vec<Ack>>>) -> Client {
        Client {
            nodes,
            only: None,
            acked,
            turn: Arc::default(),
        }
    }

    /// The same client restricted to `ids`.
    pub fn only(mut self, ids: &[NodeId]) -> Client {
        self.only = Some(ids.iter().cloned().collect());
        self
    }

    fn candidates(&self) -> Vec<Node> {
        let nodes = self.nodes.read().unwrap_or_else(|e| e.into_inner());
        nodes
            .values()
            .filter(|n| self.only.as_ref().is_none_or(|o| o.contains(n.id())))
            .cloned()
            .collect()
    }

    fn pick(&self, hint: Option<NodeId>) -> Option<Node> {
        let nodes = self.candidates();
        if let Some(n) = hint.and_then(|h| nodes.iter().find(|n| *n.id() == h)) {
            return Some(n.clone());
        }
        let leader = nodes
            .iter()
            .filter(|n| n.view().role == Role::Leader)
            .max_by_key(|n| n.view().term);
        if let Some(l) = leader {
            if self.turn.fetch_add(1, Ordering::Relaxed) % 4 != 0 {
                return Some(l.clone());
            }
        }
        // Sometimes (or when no node believes it leads) ask anyone: a stale leader
        // must not trap the client.
        let i = self.turn.fetch_add(1, Ordering::Relaxed);
        nodes.get(i % nodes.len().max(1)).cloned()
    }

    /// Proposes `put` until it is acknowledged; returns the index it was applied at.
    pub async fn put(&self, put: Put) -> LogIndex {
        let deadline = Instant::now() + PATIENCE;
        let mut hint = None;
        let mut hops = 0;
        loop {
            let Some(node) = self.pick(hint.take()) else {
                sleep(Duration::from_millis(20)).await;
                continue;
            };
            let err = match node.propose(put.clone()).await {
                Ok(index) => {
                    lock(&self.acked).push(Ack {
                        id: put.id,
                        key: put.key.clone(),
                        value: put.value,
                        index,
                    });
                    return index;
                }
                Err(e) => e,
            };
            assert!(
                Instant::now() < deadline,
                "write {put:?} not acknowledged after {PATIENCE:?}: {err}"
            );
            // A fresh hint is worth following at once, but not forever.
            if let Some(h) = err.leader_hint().filter(|h| *h != node.id()) {
                if hops < 3 {
                    hops += 1;
                    hint = Some(h.clone());
                    continue;
                }
            }
            hops = 0;
            sleep(Duration::from_millis(20)).await;
        }
    }
}

/// How a write that must not succeed failed (for partition tests).
pub fn expect_refused(r: Result<LogIndex, Error>) -> &'static str {
    match r {
        Ok(index) => panic!("a write was acknowledged (index {index}) where no quorum could commit it"),
        Err(Error::NotLeader { .. }) => "not-leader",
        Err(Error::Timeout(_)) => "timeout",
        Err(Error::ProposalDropped) => "dropped",
        Err(Error::TransferInProgress(_)) => "transfer",
        Err(e) => panic!("unexpected error {e}"),
    }
}
