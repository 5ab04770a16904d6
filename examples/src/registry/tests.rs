//! The registry's unit tests: leases that expire in log time and heartbeats that keep
//! them, and picks that stay with their instance.

use std::collections::BTreeMap;

use easyraft::{LogIndex, StateMachine};

use super::*;

fn register(r: &mut Registry, index: LogIndex, instance: &str, ttl_ms: u64, now_ms: u64) -> RegistryResult {
    r.apply(
        index,
        RegistryCommand::Register {
            service: "api".into(),
            instance: instance.into(),
            address: format!("{instance}:80"),
            meta: BTreeMap::new(),
            ttl_ms,
            now_ms,
        },
    )
}

fn live(r: &Registry, now_ms: u64) -> Vec<String> {
    match r.query(RegistryQuery::List {
        service: "api".into(),
        now_ms,
    }) {
        RegistryAnswer::Instances(m) => m.into_keys().collect(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn leases_expire_by_log_time_and_heartbeats_keep_them() {
    let mut r = Registry::default();
    assert!(matches!(
        register(&mut r, 1, "a", 1000, 10_000),
        RegistryResult::Live(_)
    ));
    assert!(matches!(
        register(&mut r, 2, "b", 5000, 10_000),
        RegistryResult::Live(_)
    ));
    assert_eq!(live(&r, 10_500), ["a", "b"]);
    // A reader's clock past a's lease hides it before any write moves log time.
    assert_eq!(live(&r, 11_500), ["b"]);
    // A heartbeat within the lease extends it; after it, the instance must register again.
    let hb = |r: &mut Registry, index, instance: &str, now_ms| {
        r.apply(
            index,
            RegistryCommand::Heartbeat {
                service: "api".into(),
                instance: instance.into(),
                ttl_ms: 1000,
                now_ms,
            },
        )
    };
    assert!(matches!(hb(&mut r, 3, "b", 14_000), RegistryResult::Live(i) if i.expires_at == 15_000));
    assert_eq!(hb(&mut r, 4, "a", 14_000), RegistryResult::NotRegistered);
    // A stamp from a lagging clock cannot move time back.
    assert!(matches!(hb(&mut r, 5, "b", 1), RegistryResult::Live(i) if i.expires_at == 15_000));
    let gone = r.apply(
        6,
        RegistryCommand::Deregister {
            service: "api".into(),
            instance: "b".into(),
            now_ms: 14_500,
        },
    );
    assert_eq!(gone, RegistryResult::Removed(true));
    assert!(live(&r, 14_500).is_empty());
    // The state survives a snapshot.
    assert!(matches!(
        register(&mut r, 7, "c", 1000, 20_000),
        RegistryResult::Live(_)
    ));
    let mut back = Registry::default();
    back.restore(&r.snapshot().unwrap()).unwrap();
    assert_eq!(live(&back, 20_000), ["c"]);
    assert!(back.restore(b"garbage").is_err());
}

#[test]
fn a_key_keeps_its_instance_and_only_a_leaving_instances_keys_move() {
    let ids = ["a", "b", "c", "d"];
    let keys: Vec<String> = (0..2000).map(|i| format!("user-{i}")).collect();
    let before: Vec<&str> = keys.iter().map(|k| rendezvous(k, ids).unwrap()).collect();
    // Every instance gets a fair share (within 25% of an even split).
    for id in ids {
        let n = before.iter().filter(|p| **p == id).count();
        assert!((375..=625).contains(&n), "{id} got {n} of 2000");
    }
    // Without c, only c's keys move.
    let without: Vec<&str> = keys.iter().map(|k| rendezvous(k, ["a", "b", "d"]).unwrap()).collect();
    for (b, a) in before.iter().zip(&without) {
        if *b != "c" {
            assert_eq!(b, a);
        }
    }
    assert_eq!(rendezvous("k", std::iter::empty::<&str>()), None);
    // The same pick through the state machine, among live instances only.
    let mut r = Registry::default();
    for (i, id) in ids.iter().enumerate() {
        register(&mut r, i as u64 + 1, id, 1000, 0);
    }
    let pick = |r: &Registry, key: &str, now_ms| match r.query(RegistryQuery::Pick {
        service: "api".into(),
        key: key.into(),
        now_ms,
    }) {
        RegistryAnswer::Picked(p) => p.map(|(id, _)| id),
        other => panic!("{other:?}"),
    };
    assert_eq!(pick(&r, "user-7", 10).as_deref(), Some(before[7]));
    assert_eq!(pick(&r, "user-7", 5000), None);
}
