//! The one state machine a server replicates: the kv, lock, config, registry and queue
//! services side by side, plus the directory of members' addresses. Each service's API
//! (`examples::kv::rpc`, ...) runs over it through [`examples::api::Hosts`].

use bytes::Bytes;
use easyraft::{BoxError, LogIndex, StateMachine};
use examples::api::{decode, encode, Hosts};
use examples::config::{ConfigAnswer, ConfigCommand, ConfigQuery, ConfigStore};
use examples::kv::{KvAnswer, KvCommand, KvQuery, KvResult, KvStore};
use examples::lock::{Holder, LockCommand, LockResult, LockTable};
use examples::queue::{Queue, QueueAnswer, QueueCommand, QueueQuery, QueueResult};
use examples::registry::{Registry, RegistryAnswer, RegistryCommand, RegistryQuery, RegistryResult};
use serde::{Deserialize, Serialize};

use crate::directory::{Directory, DirectoryCommand, Members};

/// The services' states and the directory.
#[derive(Default)]
pub struct ServerMachine {
    kv: KvStore,
    lock: LockTable,
    config: ConfigStore,
    registry: Registry,
    queue: Queue,
    directory: Directory,
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
    /// A queue write (last: the variants' indexes are in every log).
    Queue(QueueCommand),
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
}

/// The snapshot of a release with the registry but without the queue, still read (an
/// upgrade restores it with an empty queue).
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
        }
    }
}

/// The snapshot of a release without the registry, still read (an upgrade restores it
/// with an empty registry and an empty queue).
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
        })
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), BoxError> {
        // Every part is checked before anything changes. An older snapshot is shorter
        // (its missing parts at the end), so the newest layout is tried first.
        let parts: Parts = match decode(data) {
            Ok(p) => p,
            Err(e) => decode::<PartsV2>(data)
                .map(Parts::from)
                .or_else(|_| decode::<PartsV1>(data).map(Parts::from))
                .map_err(|_| e)?,
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
        (self.kv, self.lock, self.config, self.registry, self.queue) = (kv, lock, config, registry, queue);
        self.directory.replace(parts.directory);
        Ok(())
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
        registry.apply(
            1,
            RegistryCommand::Register {
                service: "api".into(),
                instance: "a".into(),
                address: "10.0.0.1:80".into(),
                meta: Default::default(),
                ttl_ms: 1000,
                now_ms: 0,
            },
        );
        let old = encode(&(
            KvStore::default().snapshot().unwrap().to_vec(),
            LockTable::default().snapshot().unwrap().to_vec(),
            ConfigStore::default().snapshot().unwrap().to_vec(),
            Members::new(),
            registry.snapshot().unwrap().to_vec(),
        ))
        .unwrap();
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
