//! Typed APIs of the services `easyraft-server` hosts, over a [`Client`]: [`Kv`],
//! [`Lock`], [`Config`], [`Registry`] and [`Queue`]. Each method is one call with the
//! retry policy of its kind (reads and idempotent writes are retried; other writes run
//! in the client's session when it has one, see [`Client::with_sessions`]) and answers
//! a typed value; an answer that does not have the documented shape is
//! [`Error::BadAnswer`]. The params and answers are those of docs/server-api.md.
//!
//! ```no_run
//! use easyraft_client::client::Client;
//! use easyraft_client::services::{Kv, Queue, Read};
//!
//! # async fn demo(client: Client) -> Result<(), easyraft_client::Error> {
//! let client = client.with_sessions();
//! let kv = Kv::new(client.clone());
//! kv.put("color", "blue").await?;
//! assert_eq!(kv.get("color", Read::Linearizable).await?.as_deref(), Some("blue"));
//! let queue = Queue::new(client);
//! let at = queue.enqueue("jobs", "resize 42.png").await?; // lands once, even if retried
//! tracing::info!(offset = at.offset, "enqueued");
//! # Ok(()) }
//! ```

mod config;
mod kv;
mod lock;
mod queue;
mod registry;

pub use config::{Config, ConfigChange, ConfigEntry, Rolledback, Watched};
pub use kv::{CasAnswer, Kv, Written};
pub use lock::{Acquired, Holder, Lock};
pub use queue::{Delivery, Enqueued, GroupInfo, Message, Messages, Queue, TopicInfo};
pub use registry::{Instance, Lease, Registry};

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::client::{Call, Client};
use crate::error::Error;
use crate::policy::CallKind;

/// How a read is served.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Read {
    /// Linearizable: it sees every write acknowledged before it was sent (the node
    /// confirms its view with the leader first; any member can serve it).
    #[default]
    Linearizable,
    /// This node's state as it is, at once (may lag behind the leader).
    Stale,
}

impl Read {
    fn stale(self) -> bool {
        self == Read::Stale
    }
}

/// Makes the call `method` of `kind` with `params`, and reads its answer as `T`.
async fn typed<T: DeserializeOwned>(
    client: &Client,
    method: &'static str,
    kind: CallKind,
    params: Value,
) -> Result<T, Error> {
    typed_call(client, &Call::new(method, kind, params)).await
}

/// Makes `call` (in a tracing span), and reads its answer as `T`.
async fn typed_call<T: DeserializeOwned>(client: &Client, call: &Call) -> Result<T, Error> {
    let span = tracing::debug_span!("easyraft_call", method = call.method);
    let reply = tracing::Instrument::instrument(client.call(call), span).await?;
    // Read from the borrowed answer: no copy of it on the way.
    T::deserialize(&reply.result).map_err(|e| Error::BadAnswer {
        endpoint: reply.endpoint.to_string(),
        what: call.method.to_string(),
        reason: format!("{e}: {}", reply.result),
    })
}

/// An answer of `method` that parsed but says nothing the contract allows.
fn bad_answer(client: &Client, method: &str, reason: String) -> Error {
    Error::BadAnswer {
        endpoint: client
            .settings
            .endpoints
            .first()
            .map(ToString::to_string)
            .unwrap_or_default(),
        what: method.to_string(),
        reason,
    }
}

/// A duration in whole milliseconds (saturating), as the services' params take it.
fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
