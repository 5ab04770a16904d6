//! The one state machine a server replicates: the kv, lock, config, registry and
//! queue services side by side, plus the directory of members' addresses and the clients'
//! sessions. Each service's API (`examples::kv::rpc`, ...) runs over it through
//! [`examples::api::Hosts`]; a write that carries a `session` runs through the
//! session table (`easyraft::cluster::sessions`), applied once however often it is sent.

mod commands;
mod snapshot;

use bytes::Bytes;
use easyraft::cluster::sessions::{SessionCommand, SessionLimits, SessionResponse, SessionTable};
use easyraft::{BoxError, LogIndex, StateMachine};
use examples::api::{encode, Hosts, Stamp};
use examples::config::ConfigStore;
use examples::kv::KvStore;
use examples::lock::LockTable;
use examples::queue::Queue;
use examples::registry::Registry;

pub use self::commands::{ServerAnswer, ServerCommand, ServerQuery, ServerResponse, ServiceCommand, ServiceResponse};
use self::snapshot::{decode_parts, Parts};
use crate::directory::Directory;

/// The services' states, the directory and the session table.
pub struct ServerMachine {
    kv: KvStore,
    lock: LockTable,
    config: ConfigStore,
    registry: Registry,
    queue: Queue,
    directory: Directory,
    sessions: SessionTable<ServiceResponse>,
}

/// The sessions' bounds: constants, not settings, because every replica must expire
/// the same sessions at the same entry (a member with other bounds would diverge).
pub const SESSION_LIMITS: SessionLimits = SessionLimits {
    max_sessions: 10_000,
    max_pending: 1_024,
    expiry: std::time::Duration::from_secs(120),
};

impl Default for ServerMachine {
    fn default() -> Self {
        ServerMachine {
            kv: KvStore::default(),
            lock: LockTable::default(),
            config: ConfigStore::default(),
            registry: Registry::default(),
            queue: Queue::default(),
            directory: Directory::default(),
            sessions: SessionTable::new(SESSION_LIMITS),
        }
    }
}

impl ServerMachine {
    /// A machine whose directory is mirrored into `directory` (read by discovery and
    /// the not-leader hints without asking the node).
    pub fn new(directory: Directory) -> Self {
        ServerMachine {
            directory,
            ..ServerMachine::default()
        }
    }
}

impl StateMachine for ServerMachine {
    type Command = ServerCommand;
    type Response = ServerResponse;
    type Query = ServerQuery;
    type QueryResponse = ServerAnswer;

    fn apply(&mut self, index: LogIndex, command: ServerCommand) -> ServerResponse {
        match command {
            ServerCommand::Kv(c) => ServerResponse::Kv(self.kv.apply(index, c)),
            ServerCommand::Lock(c) => ServerResponse::Lock(self.lock.apply(index, c)),
            ServerCommand::Config(c) => ServerResponse::Config(self.config.apply(index, c)),
            ServerCommand::Directory(c) => {
                self.directory.apply(c);
                ServerResponse::Directory(index)
            }
            ServerCommand::Registry(c) => ServerResponse::Registry(self.registry.apply(index, c)),
            ServerCommand::Queue(c) => ServerResponse::Queue(self.queue.apply(index, c)),
            ServerCommand::Session(c) => {
                let ServerMachine {
                    kv,
                    lock,
                    config,
                    registry,
                    queue,
                    sessions,
                    ..
                } = self;
                ServerResponse::Session(sessions.apply(index, c, |i, c| match c {
                    ServiceCommand::Kv(c) => ServiceResponse::Kv(kv.apply(i, c)),
                    ServiceCommand::Lock(c) => ServiceResponse::Lock(lock.apply(i, c)),
                    ServiceCommand::Config(c) => ServiceResponse::Config(config.apply(i, c)),
                    ServiceCommand::Registry(c) => ServiceResponse::Registry(registry.apply(i, c)),
                    ServiceCommand::Queue(c) => ServiceResponse::Queue(queue.apply(i, c)),
                }))
            }
        }
    }

    fn query(&self, query: ServerQuery) -> ServerAnswer {
        match query {
            ServerQuery::Kv(q) => ServerAnswer::Kv(self.kv.query(q)),
            ServerQuery::Lock(q) => ServerAnswer::Lock(self.lock.query(q)),
            ServerQuery::Config(q) => ServerAnswer::Config(self.config.query(q)),
            ServerQuery::Directory => ServerAnswer::Directory(self.directory.members()),
            ServerQuery::Registry(q) => ServerAnswer::Registry(self.registry.query(q)),
            ServerQuery::Queue(q) => ServerAnswer::Queue(self.queue.query(q)),
        }
    }

    fn snapshot(&self) -> Result<Bytes, BoxError> {
        encode(&Parts {
            kv: self.kv.snapshot()?.to_vec(),
            lock: self.lock.snapshot()?.to_vec(),
            config: self.config.snapshot()?.to_vec(),
            directory: self.directory.members(),
            registry: self.registry.snapshot()?.to_vec(),
            queue: self.queue.snapshot()?.to_vec(),
            sessions: self.sessions.encode()?,
        })
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), BoxError> {
        // Every part is checked before anything changes.
        let parts = decode_parts(data)?;
        let (mut kv, mut lock, mut config) = (KvStore::default(), LockTable::default(), ConfigStore::default());
        kv.restore(&parts.kv)?;
        lock.restore(&parts.lock)?;
        config.restore(&parts.config)?;
        let mut registry = Registry::default();
        if !parts.registry.is_empty() {
            registry.restore(&parts.registry)?;
        }
        let mut queue = Queue::default();
        if !parts.queue.is_empty() {
            queue.restore(&parts.queue)?;
        }
        let mut sessions = SessionTable::new(SESSION_LIMITS);
        if !parts.sessions.is_empty() {
            sessions.decode(&parts.sessions)?;
        }
        (self.kv, self.lock, self.config, self.registry, self.queue) = (kv, lock, config, registry, queue);
        self.sessions = sessions;
        self.directory.replace(parts.directory);
        Ok(())
    }
}

impl examples::sessions::KeepsSessions for ServerMachine {
    type Inner = ServiceCommand;
    fn session_command(command: SessionCommand<ServiceCommand>) -> ServerCommand {
        ServerCommand::Session(command)
    }
    fn session_answer(response: ServerResponse) -> Option<SessionResponse<()>> {
        match response {
            ServerResponse::Session(r) => examples::sessions::without_applied(r),
            _ => None,
        }
    }
}

/// `impl Hosts<$service> for ServerMachine` through the variant `$v`.
macro_rules! hosts {
    ($service:ty, $v:ident) => {
        impl Hosts<$service> for ServerMachine {
            fn wrap_command(command: <$service as StateMachine>::Command) -> ServerCommand {
                ServerCommand::$v(command)
            }
            fn unwrap_response(response: ServerResponse) -> Option<<$service as StateMachine>::Response> {
                match response {
                    ServerResponse::$v(r) => Some(r),
                    _ => None,
                }
            }
            fn wrap_query(query: <$service as StateMachine>::Query) -> ServerQuery {
                ServerQuery::$v(query)
            }
            fn unwrap_answer(answer: ServerAnswer) -> Option<<$service as StateMachine>::QueryResponse> {
                match answer {
                    ServerAnswer::$v(a) => Some(a),
                    _ => None,
                }
            }
            fn wrap_in_session(
                command: <$service as StateMachine>::Command,
                stamp: Stamp,
                at_ms: u64,
            ) -> Option<ServerCommand> {
                Some(ServerCommand::Session(
                    stamp.command(ServiceCommand::$v(command), at_ms),
                ))
            }
            fn unwrap_in_session(
                response: ServerResponse,
            ) -> Option<SessionResponse<<$service as StateMachine>::Response>> {
                match response {
                    ServerResponse::Session(SessionResponse::Applied(ServiceResponse::$v(r))) => {
                        Some(SessionResponse::Applied(r))
                    }
                    ServerResponse::Session(SessionResponse::Refused(e)) => Some(SessionResponse::Refused(e)),
                    _ => None,
                }
            }
        }
    };
}

hosts!(KvStore, Kv);
hosts!(LockTable, Lock);
hosts!(ConfigStore, Config);
hosts!(Registry, Registry);
hosts!(Queue, Queue);

#[cfg(test)]
mod tests;
