//! What the script's steps share: the demo's cluster type, what a run set up, the
//! scene every step reads, and what the partition (step 6) leaves for steps 7 and 8.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use easyraft::prelude::*;
use easyraft::AnyStorage;

use super::options::DemoOptions;
use crate::discovery::DemoDiscoveries;
use crate::relay::Relays;
use crate::ui::Ui;
use examples::kv::KvStore as Kv;

/// The script's steps.
pub(super) const STEPS: usize = 8;

/// The demo's cluster over transport `T`.
pub(super) type DemoCluster<T> = Cluster<Kv, AnyStorage, T>;

/// Everything a run shares, whatever the transport. The fields are dropped in the
/// order they are declared: the discovery backends and the relays go before the data
/// directory the file discovery writes into.
pub(super) struct Setup {
    pub(super) token: String,
    pub(super) discoveries: Arc<DemoDiscoveries>,
    pub(super) relays: Arc<Relays>,
    pub(super) data: tempfile::TempDir,
    pub(super) ports: BTreeMap<NodeId, u16>,
    pub(super) ids: Vec<NodeId>,
    pub(super) started: Instant,
    pub(super) opts: DemoOptions,
}

/// What every step reads.
#[derive(Clone, Copy)]
pub(super) struct Scene<'a> {
    pub(super) ui: Ui,
    pub(super) opts: &'a DemoOptions,
    pub(super) n: usize,
    pub(super) jsonrpc: bool,
    pub(super) ids: &'a [NodeId],
    pub(super) ports: &'a BTreeMap<NodeId, u16>,
    pub(super) token: &'a str,
}

/// What step 6 leaves for steps 7 and 8.
pub(super) struct Cut {
    /// The nodes cut off (the old leader first).
    pub(super) minority: Vec<NodeId>,
    /// Every node's handle.
    pub(super) handles: Vec<RaftHandle<Kv>>,
    /// The leader the majority elected.
    pub(super) new_leader: RaftHandle<Kv>,
    /// Whether the cut-off side served a linearizable read.
    pub(super) stale_read: bool,
}
