//! The one state machine a server replicates: the kv, lock, config and registry
//! services side by side, plus the directory of members' addresses and the clients'
//! sessions. Each service's API (`examples::kv::rpc`, ...) runs over it through
//! [`examples::api::Hosts`]; a write that carries a `session` runs through the
//! session table (`easyraft::cluster::sessions`), applied once however often it is sent.

use bytes::Bytes;
use easyraft::cluster::sessions::{SessionCommand, SessionLimits, SessionResponse, SessionTable};
use easyraft::{BoxError, LogIndex, StateMachine};
use examples::api::{decode, encode, Hosts, Stamp};
use examples::config::{ConfigAnswer, ConfigCommand, ConfigQuery, ConfigStore};
use examples::kv::{KvAnswer, KvCommand, KvQuery, KvResult, KvStore};
use examples::lock::{Holder, LockCommand, LockResult, LockTable};
use examples::registry::{Registry, RegistryAnswer, RegistryCommand, RegistryQuery, RegistryResult};
use serde::{Deserialize, Serialize};

use crate::directory::{Directory, DirectoryCommand, Members};

/// The services' states, the directory and the session table.
pub struct ServerMachine {
    kv: KvStore,
    lock: LockTable,
    config: ConfigStore,
    registry: Registry,
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
}

/// The snapshot: each part's own snapshot.
#[derive(Serialize, Deserialize)]
struct Parts {
    kv: Vec<u8>,
    lock: Vec<u8>,
    config: Vec<u8>,
    directory: Members,
    registry: Vec<u8>,
    sessions: Vec<u8>,
}

/// The snapshot of a release without sessions, still read (restored with none open).
#[derive(Deserialize)]
struct PartsV2 {
    kv: Vec<u8>,
    lock: Vec<u8>,
    config: Vec<u8>,
    directory: Members,
    registry: Vec<u8>,
}

impl From<PartsV2> for Parts {
    fn from(p: PartsV2) -> Parts {
        Parts {
            kv: p.kv,
            lock: p.lock,
            config: p.config,
            directory: p.directory,
            registry: p.registry,
            sessions: Vec::new(),
        }
    }
}

/// The snapshot of a release without the registry, still read (an upgrade restores it
/// with an empty registry).
#[derive(Deserialize)]
struct PartsV1 {
    kv: Vec<u8>,
    lock: Vec<u8>,
    config: Vec<u8>,
    directory: Members,
}

impl From<PartsV1> for Parts {
    fn from(p: PartsV1) -> Parts {
        Parts {
            kv: p.kv,
            lock: p.lock,
            config: p.config,
            directory: p.directory,
            registry: Vec::new(),
            sessions: Vec::new(),
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
            ServerCommand::Session(c) => {
                let ServerMachine {
                    kv,
                    lock,
                    config,
                    registry,
                    sessions,
                    ..
                } = self;
                ServerResponse::Session(sessions.apply(index, c, |i, c| match c {
                    ServiceCommand::Kv(c) => ServiceResponse::Kv(kv.apply(i, c)),
                    ServiceCommand::Lock(c) => ServiceResponse::Lock(lock.apply(i, c)),
                    ServiceCommand::Config(c) => ServiceResponse::Config(config.apply(i, c)),
                    ServiceCommand::Registry(c) => ServiceResponse::Registry(registry.apply(i, c)),
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
        }
    }

    fn snapshot(&self) -> Result<Bytes, BoxError> {
        encode(&Parts {
            kv: self.kv.snapshot()?.to_vec(),
            lock: self.lock.snapshot()?.to_vec(),
            config: self.config.snapshot()?.to_vec(),
            directory: self.directory.members(),
            registry: self.registry.snapshot()?.to_vec(),
            sessions: self.sessions.encode()?,
        })
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), BoxError> {
        // Every part is checked before anything changes.
        // Newest layout first: an older, shorter one fails to read as a newer one.
        let parts: Parts = match decode(data) {
            Ok(p) => p,
            Err(e) => match decode::<PartsV2>(data) {
                Ok(p) => p.into(),
                Err(_) => decode::<PartsV1>(data).map(Parts::from).map_err(|_| e)?,
            },
        };
        let (mut kv, mut lock, mut config) = (KvStore::default(), LockTable::default(), ConfigStore::default());
        kv.restore(&parts.kv)?;
        lock.restore(&parts.lock)?;
        config.restore(&parts.config)?;
        let mut registry = Registry::default();
        if !parts.registry.is_empty() {
            registry.restore(&parts.registry)?;
        }
        let mut sessions = SessionTable::new(SESSION_LIMITS);
        if !parts.sessions.is_empty() {
            sessions.decode(&parts.sessions)?;
        }
        (self.kv, self.lock, self.config, self.registry) = (kv, lock, config, registry);
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
                Some(ServerCommand::Session(stamp.command(ServiceCommand::$v(command), at_ms)))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::MemberAddress;

    #[test]
    fn a_snapshot_restores_every_service_and_the_directory() {
        let mut m = ServerMachine::default();
        m.apply(
            1,
            ServerCommand::Kv(KvCommand::Put {
                key: "a".into(),
                value: "1".into(),
            }),
        );
        m.apply(
            2,
            ServerCommand::Config(ConfigCommand::Set {
                key: "c".into(),
                value: "2".into(),
            }),
        );
        let addr = MemberAddress {
            peer: "127.0.0.1:1".into(),
            client: Some("127.0.0.1:2".into()),
        };
        m.apply(
            3,
            ServerCommand::Directory(DirectoryCommand::Set("n1".into(), addr.clone())),
        );
        let snap = m.snapshot().unwrap();
        let mirror = Directory::default();
        let mut back = ServerMachine::new(mirror.clone());
        back.restore(&snap).unwrap();
        assert_eq!(
            back.kv.query(KvQuery::Get("a".into())),
            KvAnswer::Value(Some("1".into()))
        );
        assert_eq!(mirror.get("n1"), Some(addr));
        assert!(back.restore(b"garbage").is_err());
        assert_eq!(mirror.members().len(), 1);
    }

    #[test]
    fn a_snapshot_from_before_the_registry_still_restores() {
        let old = encode(&(
            KvStore::default().snapshot().unwrap().to_vec(),
            LockTable::default().snapshot().unwrap().to_vec(),
            ConfigStore::default().snapshot().unwrap().to_vec(),
            Members::new(),
        ))
        .unwrap();
        let mut m = ServerMachine::default();
        m.restore(&old).unwrap();
        let q = examples::registry::RegistryQuery::Services { now_ms: 0 };
        assert!(matches!(
            m.query(ServerQuery::Registry(q)),
            ServerAnswer::Registry(RegistryAnswer::Services(s)) if s.is_empty()
        ));
        // And a new snapshot carries the registry.
        m.apply(
            1,
            ServerCommand::Registry(RegistryCommand::Register {
                service: "api".into(),
                instance: "a".into(),
                address: "10.0.0.1:80".into(),
                meta: Default::default(),
                ttl_ms: 1000,
                now_ms: 0,
            }),
        );
        let mut back = ServerMachine::default();
        back.restore(&m.snapshot().unwrap()).unwrap();
        let q = examples::registry::RegistryQuery::Services { now_ms: 0 };
        assert!(matches!(
            back.query(ServerQuery::Registry(q)),
            ServerAnswer::Registry(RegistryAnswer::Services(s)) if s.get("api") == Some(&1)
        ));
    }

    fn session_put(m: &mut ServerMachine, index: LogIndex, session: LogIndex, seq: u64, value: &str) -> ServerResponse {
        let stamp = Stamp {
            id: session,
            seq,
            acked: seq,
        };
        let put = KvCommand::Put {
            key: "k".into(),
            value: value.into(),
        };
        m.apply(index, <ServerMachine as Hosts<KvStore>>::wrap_in_session(put, stamp, 10).unwrap())
    }

    #[test]
    fn a_session_write_retried_after_a_snapshot_install_is_answered_as_first_and_applied_once() {
        let mut m = ServerMachine::default();
        let ServerResponse::Session(SessionResponse::Registered(s)) =
            m.apply(1, ServerCommand::Session(SessionCommand::Register { at_ms: 5 }))
        else {
            panic!("not registered")
        };
        let first = session_put(&mut m, 2, s, 1, "a");
        assert!(matches!(&first, ServerResponse::Session(SessionResponse::Applied(ServiceResponse::Kv(r))) if r.index == 2));
        // A follower that installs this snapshot, then gets the retry of (s, 1).
        let mut follower = ServerMachine::default();
        follower.restore(&m.snapshot().unwrap()).unwrap();
        let retry = session_put(&mut follower, 3, s, 1, "a");
        assert!(
            matches!(&retry, ServerResponse::Session(SessionResponse::Applied(ServiceResponse::Kv(r))) if r.index == 2),
            "the retry is answered with the first application's index: {retry:?}"
        );
        assert_eq!(follower.sessions.kept_responses(), 1);
        // A snapshot of a release without sessions restores with none open.
        let v2 = encode(&(
            KvStore::default().snapshot().unwrap().to_vec(),
            LockTable::default().snapshot().unwrap().to_vec(),
            ConfigStore::default().snapshot().unwrap().to_vec(),
            Members::new(),
            Registry::default().snapshot().unwrap().to_vec(),
        ))
        .unwrap();
        let mut old = ServerMachine::default();
        old.restore(&v2).unwrap();
        assert_eq!(old.sessions.open_sessions(), 0);
        assert!(matches!(
            session_put(&mut old, 4, s, 1, "a"),
            ServerResponse::Session(SessionResponse::Refused(_))
        ));
    }
}
