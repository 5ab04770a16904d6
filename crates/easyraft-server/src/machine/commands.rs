//! What the server's state machine is asked: its commands, queries and their answers,
//! one variant per service plus the directory and the sessions. The variants' order is
//! in every log and snapshot: new ones go last.

use easyraft::cluster::sessions::{SessionCommand, SessionResponse};
use easyraft::{LogIndex, StateMachine};
use examples::config::{ConfigAnswer, ConfigCommand, ConfigQuery, ConfigStore};
use examples::kv::{KvAnswer, KvCommand, KvQuery, KvResult};
use examples::lock::{Holder, LockCommand, LockResult};
use examples::queue::{QueueAnswer, QueueCommand, QueueQuery, QueueResult};
use examples::registry::{RegistryAnswer, RegistryCommand, RegistryQuery, RegistryResult};
use serde::{Deserialize, Serialize};

use crate::directory::{DirectoryCommand, Members};

/// A command of one of the services, or of the directory.
#[derive(Debug, Serialize, Deserialize)]
pub enum ServerCommand {
    /// A kv write.
    Kv(KvCommand),
    /// A lock command.
    Lock(LockCommand),
    /// A config write.
    Config(ConfigCommand),
    /// A directory change.
    Directory(DirectoryCommand),
    /// A registry write.
    Registry(RegistryCommand),
    /// A queue write.
    Queue(QueueCommand),
    /// A client session's command: open, keep alive, close, or a service's write in
    /// the session (last: the variants' indexes are in every log).
    Session(SessionCommand<ServiceCommand>),
}

/// A service's write, as carried in a client session (the directory is the servers'
/// own and never in a session).
#[derive(Debug, Serialize, Deserialize)]
pub enum ServiceCommand {
    /// A kv write.
    Kv(KvCommand),
    /// A lock command.
    Lock(LockCommand),
    /// A config write.
    Config(ConfigCommand),
    /// A registry write.
    Registry(RegistryCommand),
    /// A queue write.
    Queue(QueueCommand),
}

/// The response to a [`ServiceCommand`]: what a session keeps for a retry.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ServiceResponse {
    /// A kv write's result.
    Kv(KvResult),
    /// A lock command's result.
    Lock(LockResult),
    /// A config write's result.
    Config(<ConfigStore as StateMachine>::Response),
    /// A registry write's result.
    Registry(RegistryResult),
    /// A queue write's result (kept as JSON: its refusals are tagged by `reason`, a
    /// layout postcard cannot read back).
    Queue(#[serde(with = "as_json")] QueueResult),
}

/// (De)serializes a value as a JSON string inside a postcard encoding.
mod as_json {
    use serde::{de::DeserializeOwned, Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<T: Serialize, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        let text = serde_json::to_string(v).map_err(serde::ser::Error::custom)?;
        s.serialize_str(&text)
    }

    pub(super) fn deserialize<'de, T: DeserializeOwned, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        let text = String::deserialize(d)?;
        serde_json::from_str(&text).map_err(serde::de::Error::custom)
    }
}

/// The response to a [`ServerCommand`], of the same service.
#[derive(Debug)]
pub enum ServerResponse {
    /// A kv write's result.
    Kv(KvResult),
    /// A lock command's result.
    Lock(LockResult),
    /// A config write's result.
    Config(<ConfigStore as StateMachine>::Response),
    /// A directory change was applied at this index.
    Directory(LogIndex),
    /// A registry write's result.
    Registry(RegistryResult),
    /// A queue write's result.
    Queue(QueueResult),
    /// A session command's answer.
    Session(SessionResponse<ServiceResponse>),
}

/// A query of one of the services, or of the directory.
#[derive(Debug)]
pub enum ServerQuery {
    /// A kv read.
    Kv(KvQuery),
    /// A lock's holder.
    Lock(String),
    /// A config read.
    Config(ConfigQuery),
    /// The whole directory.
    Directory,
    /// A registry read.
    Registry(RegistryQuery),
    /// A queue read.
    Queue(QueueQuery),
}

/// The answer to a [`ServerQuery`].
#[derive(Debug)]
pub enum ServerAnswer {
    /// A kv answer.
    Kv(KvAnswer),
    /// A lock's holder.
    Lock(Option<Holder>),
    /// A config answer.
    Config(ConfigAnswer),
    /// The directory.
    Directory(Members),
    /// A registry answer.
    Registry(RegistryAnswer),
    /// A queue answer.
    Queue(QueueAnswer),
}
