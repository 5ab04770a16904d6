//! The state machine's tests: snapshots of every release restore, and a session's
//! write retried after a snapshot install is answered as the first.

use easyraft::cluster::sessions::{SessionCommand, SessionResponse};
use easyraft::{LogIndex, StateMachine};
use examples::api::{encode, Hosts, Stamp};
use examples::config::{ConfigCommand, ConfigStore};
use examples::kv::{KvAnswer, KvCommand, KvQuery, KvStore};
use examples::lock::LockTable;
use examples::queue::{QueueAnswer, QueueCommand, QueueQuery};
use examples::registry::{Registry, RegistryAnswer, RegistryCommand, RegistryQuery};

use super::{ServerAnswer, ServerCommand, ServerMachine, ServerQuery, ServerResponse, ServiceResponse};
use crate::directory::{Directory, DirectoryCommand, MemberAddress, Members};

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
