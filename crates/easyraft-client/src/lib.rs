//! # easyraft-client
//!
//! A client for the client API of `easyraft-server` (docs/server-api.md): JSON-RPC 2.0
//! over HTTP/1.1, plain or `https://`. Give it any members; it tries them in turn,
//! follows a follower's "not the leader" hint to the leader, and retries what the
//! contract says may be retried (reads and idempotent writes after a lost answer; any
//! call while the cluster elects or is busy) with a capped exponential backoff until
//! the call's deadline. A write that is not idempotent is never sent twice: when its
//! answer is lost, the error says its outcome is unknown.
//!
//! ```no_run
//! use std::time::Duration;
//! use easyraft_client::client::{Call, Client, Protocol, Settings};
//! use easyraft_client::endpoint::Endpoint;
//! use easyraft_client::policy::CallKind;
//! use serde_json::json;
//!
//! # async fn demo() -> Result<(), easyraft_client::Error> {
//! let client = Client::new(Settings {
//!     endpoints: Endpoint::parse_list(&["10.0.0.1:7000,10.0.0.2:7000,10.0.0.3:7000"])
//!         .map_err(easyraft_client::Error::Usage)?,
//!     connect_timeout: Duration::from_secs(2),
//!     timeout: Duration::from_secs(5),
//!     deadline: Duration::from_secs(15),
//!     admin_token: None,
//!     cacert: None,
//!     protocol: Protocol::Http,
//! })?;
//! let put = Call::new("kv_put", CallKind::IdempotentWrite, json!({"key": "k", "value": "v"}));
//! let reply = client.call(&put).await?;
//! println!("written at index {} by {}", reply.result["index"], reply.endpoint);
//! # Ok(()) }
//! ```
//!
//! With [`Client::with_sessions`](client::Client::with_sessions) every write runs in a
//! client session: the cluster applies it once however often it is sent, so writes
//! that are not idempotent (`kv_cas`, `queue_enqueue`, `lock_acquire`) are retried
//! through lost answers and leader changes as safely as reads. [`services`] has typed
//! APIs of the kv store, locks, the config center, the registry and the queue.
//!
//! The retry and redirect rules are in [`policy`], as a pure function with a unit test
//! per case. `easyraftctl` is a command line over this crate.

mod call;
pub mod client;
pub mod codes;
pub mod endpoint;
mod error;
pub mod http;
pub mod policy;
pub mod services;
mod session;
pub mod stream;
pub mod stream_client;

pub use error::Error;
