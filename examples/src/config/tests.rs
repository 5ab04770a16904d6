//! The configuration center's unit tests: watches after a version, resync past the
//! kept history, and rollbacks of a key or a namespace.

use easyraft::{LogIndex, StateMachine};

use super::*;

#[test]
fn changes_after_a_version_and_resync_when_history_is_gone() {
    let mut s = ConfigStore::default();
    set(&mut s, 3, "app/a", "1");
    set(&mut s, 4, "other/x", "2");
    assert!(s.apply(5, ConfigCommand::Delete { key: "app/a".into() }).is_ok());
    let ConfigAnswer::Changes(c, v) = s.query(ConfigQuery::Since {
        prefix: "app/".into(),
        version: 3,
    }) else {
        panic!()
    };
    assert_eq!((c.len(), c[0].version, c[0].value.clone(), v), (1, 5, None, 5));
    // Nothing dropped yet: even version 0 gets the whole history.
    let since = |version| ConfigQuery::Since {
        prefix: "".into(),
        version,
    };
    assert!(matches!(s.query(since(0)), ConfigAnswer::Changes(c, 5) if c.len() == 3));
    s.drop_oldest();
    assert_eq!(s.query(since(2)), ConfigAnswer::Resync(5));
    assert!(matches!(s.query(since(3)), ConfigAnswer::Changes(c, 5) if c.len() == 2));
}

fn set(s: &mut ConfigStore, index: LogIndex, key: &str, value: &str) {
    let cmd = ConfigCommand::Set {
        key: key.into(),
        value: value.into(),
    };
    assert!(s.apply(index, cmd).is_ok());
}

fn get(s: &ConfigStore, key: &str) -> Option<String> {
    match s.query(ConfigQuery::Get(key.into())) {
        ConfigAnswer::Entry(e) => e.map(|(v, _)| v),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_rollback_restores_a_key_or_a_namespace_as_one_new_version_watchers_see() {
    let mut s = ConfigStore::default();
    set(&mut s, 1, "app/db", "old-db");
    set(&mut s, 2, "app/cache", "on");
    set(&mut s, 3, "other/x", "1");
    // Version 3 is the good one; then a bad deploy.
    set(&mut s, 4, "app/db", "bad-db");
    set(&mut s, 5, "app/new", "oops");
    assert!(s
        .apply(
            6,
            ConfigCommand::Delete {
                key: "app/cache".into()
            }
        )
        .is_ok());
    set(&mut s, 7, "other/x", "2");

    // One key.
    let one = s.apply(
        8,
        ConfigCommand::Rollback {
            scope: Scope::Key("app/db".into()),
            to: 3,
        },
    );
    assert_eq!(
        one,
        Ok(Written {
            version: 8,
            keys: vec!["app/db".into()]
        })
    );
    assert_eq!(get(&s, "app/db").as_deref(), Some("old-db"));
    assert_eq!(get(&s, "app/new").as_deref(), Some("oops"));

    // The namespace: app/new did not exist at 3 (deleted), app/cache did (back);
    // app/db already matches version 3 and stays out; other/ is untouched.
    let all = s.apply(
        9,
        ConfigCommand::Rollback {
            scope: Scope::Prefix("app/".into()),
            to: 3,
        },
    );
    let keys = all.map(|w| w.keys).unwrap_or_default();
    assert_eq!(keys, ["app/cache", "app/new"]);
    assert_eq!(get(&s, "app/cache").as_deref(), Some("on"));
    assert_eq!(get(&s, "app/new"), None);
    assert_eq!(get(&s, "other/x").as_deref(), Some("2"));
    // A watcher at version 8 sees the rollback as changes at version 9.
    let ConfigAnswer::Changes(c, 9) = s.query(ConfigQuery::Since {
        prefix: "app/".into(),
        version: 8,
    }) else {
        panic!()
    };
    assert!(c.iter().all(|c| c.version == 9) && c.len() == 2, "{c:?}");

    // Refusals change nothing.
    let future = s.apply(
        10,
        ConfigCommand::Rollback {
            scope: Scope::Prefix("".into()),
            to: 99,
        },
    );
    assert_eq!(future, Err(Refused::Future { to: 99, version: 9 }));
    s.drop_oldest();
    s.drop_oldest();
    let gone = s.apply(
        10,
        ConfigCommand::Rollback {
            scope: Scope::Key("app/db".into()),
            to: 1,
        },
    );
    assert!(matches!(gone, Err(Refused::HistoryGone { to: 1, .. })), "{gone:?}");
    assert_eq!(s.version, 9);
}
