//! `RaftNode`: one tokio task owns one core node and is the only code that touches
//! it. It ticks, steps inbound messages, batches proposals and hands the work of each
//! Ready to the lanes beside it, never waiting for them: the log writer thread
//! ([`crate::log_writer`]) persists, the apply worker thread ([`crate::apply`])
//! applies, answers proposals and reads and takes snapshots, and the transport sends.
//! Their completions come back as messages to the node task.
//!
//! This file holds the task's state; its behaviour is in the files beside it, one
//! concern each: `start` (starting a node), `event_loop` (the loop and its end),
//! `requests` (the handle's requests), `persist` (the hand-off to the log writer),
//! `applying` (the hand-off to the apply worker), `reads`, `membership` and
//! `snapshots`.

use std::collections::BTreeMap;
use std::sync::Arc;

use raft_core::{LogIndex, Message, NodeId, RawNode, ReadyDriver, SnapshotMeta, Term};
use raft_storage::StagedSnapshot;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::apply::{Applier, ApplyReport};
use crate::config::RaftConfig;
use crate::error::Result;
use crate::events::{NodeView, RaftEvent};
use crate::handle::Request;
use crate::log_writer::{LogWriter, Persisted};
use crate::metrics::Counters;
use crate::shared_storage::SharedStorage;
use crate::state_machine::StateMachine;
use crate::transport::{Outbound, SendReport};

mod applying;
mod event_loop;
mod membership;
mod persist;
mod reads;
mod requests;
mod snapshots;
mod start;

pub(crate) use start::Lanes;

/// Starts Raft nodes. See [`RaftNode::start`].
pub struct RaftNode;

/// Where the answer to a caller goes.
type Reply<R> = oneshot::Sender<Result<R>>;

/// A membership change proposed and not yet applied.
struct PendingConf {
    index: LogIndex,
    term: Term,
    reply: Reply<()>,
    appended: bool,
}

/// A read waiting for its ReadIndex: the query, the caller, and the tick it was last
/// asked at (`None`: not asked yet, no leader was known).
type PendingRead<SM> = (
    <SM as StateMachine>::Query,
    Reply<<SM as StateMachine>::QueryResponse>,
    Option<u64>,
);

/// The node task: the core node and everything around it that only this task
/// touches (the lanes' channels, the callers waiting for answers).
struct NodeTask<SM: StateMachine, S, T> {
    id: NodeId,
    raw: RawNode<SharedStorage<S>>,
    /// Carries out the Ready contract: numbers the writes, holds the messages that
    /// wait for them, writes a hard state only when its term or vote changed.
    ready: ReadyDriver,
    storage: SharedStorage<S>,
    writer: LogWriter<S>,
    /// The storage writes memory only: write on the node task ([`raft_storage::LogStore::writes_inline`]).
    write_inline: bool,
    /// A log write has been in flight longer than `disk_stall_timeout`.
    disk_stalled: bool,
    persisted_tx: mpsc::UnboundedSender<Persisted>,
    persisted_rx: mpsc::UnboundedReceiver<Persisted>,
    /// Write jobs submitted and not yet reported.
    writes_in_flight: usize,
    applier: Applier<SM>,
    applied_rx: mpsc::UnboundedReceiver<ApplyReport>,
    /// A snapshot was asked of the apply worker and is not yet persisted.
    snapshotting: bool,
    /// A leader's snapshot the state machine accepted, staged, for the storage to
    /// install once the core hands it out.
    accepted: Option<(LogIndex, StagedSnapshot)>,
    outbound: Outbound<T>,
    transport: Arc<T>,
    inbox_rx: mpsc::Receiver<Message>,
    requests: mpsc::Receiver<Request<SM>>,
    reports: mpsc::UnboundedReceiver<SendReport>,
    events: broadcast::Sender<RaftEvent>,
    view: watch::Sender<NodeView>,
    counters: Arc<Counters>,
    /// Proposals by log index, with the term they were appended in.
    proposals: BTreeMap<LogIndex, (Term, Reply<SM::Response>)>,
    conf_changes: Vec<PendingConf>,
    /// Reads waiting for their ReadIndex, by context id, with the tick they were
    /// last asked at (`None`: not asked yet, no leader was known).
    reads: BTreeMap<u64, PendingRead<SM>>,
    next_read: u64,
    /// Ticks since the start.
    ticks: u64,
    /// The leader or term changed: ask the pending reads again.
    reads_stale: bool,
    applied: LogIndex,
    last_snapshot: SnapshotMeta,
    /// Snapshot jobs sent to the apply worker so far (the one in flight is the last).
    snapshot_jobs: u64,
    /// Callers of `snapshot_now`, with the number of jobs sent when each asked.
    snapshot_waiters: Vec<(u64, oneshot::Sender<Result<SnapshotMeta>>)>,
    config: RaftConfig,
    leader: Option<NodeId>,
    /// The host's ticks, shared by its groups; `None`: the node ticks on its own.
    ticker: Option<Ticker>,
}

/// What paces a node's ticks: an interval of its own, or the ticks of the host it
/// runs on, which all its groups take at the same moment (so that their heartbeats to
/// one peer leave together, as one batch).
pub(crate) enum Ticker {
    Own(tokio::time::Interval),
    Shared(watch::Receiver<u64>),
}

impl Ticker {
    fn own(every: std::time::Duration) -> Self {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ticker::Own(interval)
    }

    /// Waits for the next tick (forever, once the host is gone).
    async fn tick(&mut self) {
        match self {
            Ticker::Own(interval) => {
                interval.tick().await;
            }
            Ticker::Shared(ticks) => {
                if ticks.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        }
    }
}
