//! Services on easyraft, each a state machine plus a JSON-RPC API served over
//! HTTP by an API server built on the node's handle ([`serve`]; so `curl` or any
//! JSON-RPC library can use it), on its own port beside the Raft port:
//!
//! - [`kv`]: a key-value store with `kv_put`, `kv_get`, `kv_delete`, `kv_cas`, `kv_scan`;
//! - [`lock`]: a distributed lock with fencing tokens, `lock_acquire` (optionally
//!   waiting), `lock_renew`, `lock_release`, `lock_holder`;
//! - [`config`]: a configuration center with versioned keys, `config_set`,
//!   `config_get`, `config_list`, `config_delete`, `config_watch` (long poll) and
//!   `config_rollback`;
//! - [`registry`]: a service registry with leases and heartbeats, `registry_register`,
//!   `registry_heartbeat`, `registry_deregister`, `registry_list`, and
//!   `registry_pick` (consistent hashing);
//! - [`queue`]: a message queue of topics with retention and consumer groups that
//!   commit offsets under a lease, `queue_create`, `queue_enqueue`, `queue_poll`,
//!   `queue_commit`, `queue_info`, `queue_read`: a poll claims the group's lease and
//!   delivers from its committed offset, so what a consumer did not commit goes again
//!   to it or, once its lease ran out, to the consumer that takes over;
//! - [`sessions`]: client sessions (`session_open`, `session_keepalive`,
//!   `session_close`): a write that carries `session: {id, seq, acked}` is applied
//!   once however often it is sent, and every retry gets the first answer.
//!
//! Writes go to the leader: a follower answers with error [`api::NOT_LEADER`] and the
//! leader's id and address in `data`. Reads are linearizable on every node.
//!
//! One node per process, serving all three services, is `easyraft-server`;
//! [`runner::LocalCluster`] runs a whole cluster of one service in one process.
#![warn(missing_docs, unreachable_pub)]

pub mod api;
pub mod config;
pub mod kv;
pub mod lock;
pub mod queue;
pub mod registry;
pub mod runner;
pub mod serve;
pub mod sessions;
pub mod stream;
