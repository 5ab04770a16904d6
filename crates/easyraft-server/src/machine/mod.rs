//! The one state machine a server replicates: the kv, lock, config, registry and
//! queue services side by side, plus the directory of members' addresses and the clients'
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
use examples::queue::{Queue, QueueAnswer, QueueCommand, QueueQuery, QueueResult};
use examples::registry::{Registry, RegistryAnswer, RegistryCommand, RegistryQuery, RegistryResult};
use serde::{Deserialize, Serialize};

use crate::directory::{Directory, DirectoryCommand, Members};

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

/// The snapshot: each part's own snapshot.
#[derive(Serialize, Deserialize)]
struct Parts {
    kv: Vec<u8>,
    lock: Vec<u8>,
    config: Vec<u8>,
    directory: Members,
    registry: Vec<u8>,
    queue: Vec<u8>,
    sessions: Vec<u8>,
}

/// The snapshot of a release with the registry but without the queue and sessions,
/// still read (restored with an empty queue and no session open).
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
            queue: Vec::new(),
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
            queue: Vec::new(),
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
mod tests {
    use super::*;
    use crate::directory::MemberAddress;

    /// A snapshot in the layout of an older release: kv, lock, config and directory,
    /// plus the registry's part when given (the layout before the queue and sessions).
    fn old_snapshot(registry: Option<&Registry>) -> Vec<u8> {
        let (kv, lock, config) = (
            KvStore::default().snapshot().unwrap().to_vec(),
            LockTable::default().snapshot().unwrap().to_vec(),
            ConfigStore::default().snapshot().unwrap().to_vec(),
        );
        match registry {
            None => encode(&(kv, lock, config, Members::new())),
            Some(r) => encode(&(kv, lock, config, Members::new(), r.snapshot().unwrap().to_vec())),
        }
        .unwrap()
        .to_vec()
    }

    /// Registers instance "a" of service "api" for a second, at log time 0.
    fn register_api() -> RegistryCommand {
        RegistryCommand::Register {
            service: "api".into(),
            instance: "a".into(),
            address: "10.0.0.1:80".into(),
            meta: Default::default(),
            ttl_ms: 1000,
            now_ms: 0,
        }
    }

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
        let old = old_snapshot(None);
        let mut m = ServerMachine::default();
        m.restore(&old).unwrap();
        let q = examples::registry::RegistryQuery::Services { now_ms: 0 };
        assert!(matches!(
            m.query(ServerQuery::Registry(q)),
            ServerAnswer::Registry(RegistryAnswer::Services(s)) if s.is_empty()
        ));
        // And a new snapshot carries the registry.
        m.apply(1, ServerCommand::Registry(register_api()));
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
        m.apply(
            index,
            <ServerMachine as Hosts<KvStore>>::wrap_in_session(put, stamp, 10).unwrap(),
        )
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
        assert!(
            matches!(&first, ServerResponse::Session(SessionResponse::Applied(ServiceResponse::Kv(r))) if r.index == 2)
        );
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
        let v2 = old_snapshot(Some(&Registry::default()));
        let mut old = ServerMachine::default();
        old.restore(&v2).unwrap();
        assert_eq!(old.sessions.open_sessions(), 0);
        assert!(matches!(
            session_put(&mut old, 4, s, 1, "a"),
            ServerResponse::Session(SessionResponse::Refused(_))
        ));
    }

    fn queue_info(m: &ServerMachine) -> Option<examples::queue::TopicInfo> {
        let q = QueueQuery::Info {
            topic: "jobs".into(),
            now_ms: 0,
        };
        match m.query(ServerQuery::Queue(q)) {
            ServerAnswer::Queue(QueueAnswer::Info(i)) => i,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_snapshot_from_before_the_queue_restores_with_an_empty_queue_and_a_new_one_carries_it() {
        let mut registry = Registry::default();
        registry.apply(1, register_api());
        let old = old_snapshot(Some(&registry));
        let mut m = ServerMachine::default();
        m.restore(&old).unwrap();
        assert_eq!(queue_info(&m), None);
        let q = RegistryQuery::Services { now_ms: 0 };
        assert!(matches!(
            m.query(ServerQuery::Registry(q)),
            ServerAnswer::Registry(RegistryAnswer::Services(s)) if s.get("api") == Some(&1)
        ));
        let r = m.apply(
            2,
            ServerCommand::Queue(QueueCommand::Enqueue {
                topic: "jobs".into(),
                message: "m0".into(),
                now_ms: 0,
            }),
        );
        assert!(matches!(r, ServerResponse::Queue(Ok(_))), "{r:?}");
        let mut back = ServerMachine::default();
        back.restore(&m.snapshot().unwrap()).unwrap();
        assert_eq!(queue_info(&back).map(|i| (i.first, i.next)), Some((0, 1)));
    }
}
