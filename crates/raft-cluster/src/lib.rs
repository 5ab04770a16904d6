//! # raft-cluster
//!
//! easyraft's tokio runtime. [`RaftNode::start`] runs one Raft node as a task that
//! owns the pure protocol core; you talk to it through a cloneable [`RaftHandle`]:
//! `propose`, linearizable `read`, membership changes, leadership transfer, status,
//! metrics and event streams. [`Cluster`] starts a set of nodes in one process over
//! any [`Transport`]; [`MemNetwork`] is the in-memory one, with fault injection.
//!
//! It knows nothing about wire formats: a [`Transport`] is handed
//! [`raft_core::Message`] values and delivers them to the peer's [`Inbox`] however it
//! likes (the network transports encode them with the `raft-wire` crate). [`ops`]
//! renders a node's `/health`, `/status` and `/metrics` answers for the application's
//! own HTTP server.
//!
//! ```
//! use bytes::Bytes;
//! use raft_cluster::{BoxError, Cluster, MemNetwork, RaftConfig, StateMachine};
//! use raft_core::{LogIndex, MemStorage};
//!
//! #[derive(Default)]
//! struct Counter(u64);
//!
//! impl StateMachine for Counter {
//!     type Command = u64;
//!     type Response = u64;
//!     type Query = ();
//!     type QueryResponse = u64;
//!     fn apply(&mut self, _index: LogIndex, add: u64) -> u64 {
//!         self.0 += add;
//!         self.0
//!     }
//!     fn query(&self, _: ()) -> u64 {
//!         self.0
//!     }
//!     fn snapshot(&self) -> Result<Bytes, BoxError> {
//!         Ok(Bytes::copy_from_slice(&self.0.to_be_bytes()))
//!     }
//!     fn restore(&mut self, data: &[u8]) -> Result<(), BoxError> {
//!         self.0 = u64::from_be_bytes(data.try_into()?);
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), raft_cluster::Error> {
//! let net = MemNetwork::new();
//! let mut cluster = Cluster::start(
//!     ["node1", "node2", "node3"],
//!     RaftConfig::fast(),
//!     |_| Ok(MemStorage::default()),
//!     |_| Counter::default(),
//!     move |id| net.transport(id.clone()),
//! )
//! .await?;
//! let leader = cluster.wait_for_leader(std::time::Duration::from_secs(5)).await?;
//! assert_eq!(leader.propose(5).await?, 5);
//! assert_eq!(leader.read(()).await?, 5);
//! cluster.stop().await;
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs, unreachable_pub)]

mod apply;
mod backoff;
mod cluster;
mod config;
pub mod duration;
mod error;
mod events;
mod faulty;
mod handle;
mod log_limit;
mod log_writer;
mod mem_transport;
mod metrics;
mod multi;
mod node;
pub mod ops;
pub mod sessions;
mod shared_storage;
mod state_machine;
pub mod testing;
mod transport;

pub use backoff::Backoff;
pub use cluster::Cluster;
pub use config::RaftConfig;
pub use error::{BoxError, Error, Result};
pub use events::{NodeView, RaftEvent};
pub use faulty::{Faults, FaultyTransport};
pub use handle::RaftHandle;
pub use log_limit::LogLimiter;
pub use mem_transport::{MemNetwork, MemTransport};
pub use metrics::{Histogram, Metrics};
pub use multi::{GroupInfo, HostOptions, RaftHost};
pub use node::RaftNode;
pub use state_machine::StateMachine;
#[doc(hidden)]
pub use tracing as __tracing;
pub use transport::{Inbox, InboxError, Transport, TransportError, LIVENESS_GROUP};
