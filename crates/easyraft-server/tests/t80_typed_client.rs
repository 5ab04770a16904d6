//! easyraft-client's typed service APIs against three real servers: every method of
//! kv, lock, config, registry and queue, through a client given every member (so
//! calls that land on followers are redirected), in a client session. An answer whose
//! shape drifted from what the client reads fails here as `BadAnswer`.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use easyraft_client::client::Protocol;
use easyraft_client::services::{Acquired, Config, Kv, Lease, Lock, Queue, Read, Registry, Watched};
use support::*;

#[test]
fn t80_every_typed_method_answers_its_documented_shape() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = start_cluster(dir.path(), 3);
    leader(&nodes);
    let ports: Vec<u16> = nodes.iter().map(|n| n.client).collect();
    let client = easyraft_client(&ports, Protocol::Http, None).with_sessions();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        // kv
        let kv = Kv::new(client.clone());
        let w = kv.put("a/1", "x").await.unwrap();
        assert_eq!(w.previous, None);
        assert_eq!(kv.put("a/1", "y").await.unwrap().previous.as_deref(), Some("x"));
        assert_eq!(kv.get("a/1", Read::Linearizable).await.unwrap().as_deref(), Some("y"));
        let cas = kv.cas("a/2", None, Some("z")).await.unwrap();
        assert!(cas.ok && cas.index > w.index, "{cas:?}");
        assert!(!kv.cas("a/2", None, Some("again")).await.unwrap().ok);
        let pairs = kv.scan("a/", 10, Read::Linearizable).await.unwrap();
        assert_eq!(
            pairs,
            [
                ("a/1".to_string(), "y".to_string()),
                ("a/2".to_string(), "z".to_string())
            ]
        );
        assert_eq!(kv.delete("a/1").await.unwrap().previous.as_deref(), Some("y"));
        assert_eq!(kv.get("a/1", Read::Linearizable).await.unwrap(), None);
        assert!(client.session_id().await.is_some(), "the writes ran in a session");

        // lock
        let lock = Lock::new(client.clone());
        let ttl = Duration::from_secs(30);
        let Acquired::Granted { token, .. } = lock.acquire("l", "me", ttl, Duration::ZERO).await.unwrap() else {
            panic!("not granted")
        };
        let again = lock.acquire("l", "me", ttl, Duration::ZERO).await.unwrap();
        assert!(
            matches!(again, Acquired::Granted { token: t, .. } if t == token),
            "{again:?}"
        );
        assert!(matches!(
            lock.acquire("l", "other", ttl, Duration::ZERO).await.unwrap(),
            Acquired::Held { ref holder, .. } if holder == "me"
        ));
        assert_eq!(lock.holder("l").await.unwrap().map(|h| h.token), Some(token));
        assert!(matches!(
            lock.renew("l", "me", token, ttl).await.unwrap(),
            Acquired::Granted { .. }
        ));
        assert!(lock.release("l", "me", token).await.unwrap());
        assert_eq!(lock.holder("l").await.unwrap(), None);

        // config
        let config = Config::new(client.clone());
        let v1 = config.set("app/db", "old").await.unwrap();
        let v2 = config.set("app/db", "new").await.unwrap();
        assert!(v2 > v1);
        assert_eq!(
            config.get("app/db", Read::Linearizable).await.unwrap(),
            Some(("new".into(), v2))
        );
        let (entries, version) = config.list("app/", Read::Linearizable).await.unwrap();
        assert_eq!((entries.len(), version >= v2), (1, true));
        let back = config.rollback_key("app/db", v1).await.unwrap();
        assert_eq!(back.keys, ["app/db"]);
        match config.watch("app/", v2, Duration::from_secs(5)).await.unwrap() {
            Watched::Changes { changes, .. } => {
                assert_eq!(changes.last().and_then(|c| c.value.as_deref()), Some("old"))
            }
            other => panic!("{other:?}"),
        }
        let again = config.rollback_prefix("app/", v1).await.unwrap();
        assert!(again.keys.is_empty(), "already at v1's values: {again:?}");
        assert!(config.delete("app/db").await.unwrap() > back.version);

        // registry
        let registry = Registry::new(client.clone());
        let meta = BTreeMap::from([("zone".to_string(), "a".to_string())]);
        for i in ["i1", "i2"] {
            let lease = registry
                .register("api", i, &format!("{i}:80"), ttl, &meta)
                .await
                .unwrap();
            assert!(matches!(lease, Lease::Live { .. }), "{lease:?}");
        }
        assert!(matches!(
            registry.heartbeat("api", "i1", ttl).await.unwrap(),
            Lease::Live { .. }
        ));
        assert_eq!(
            registry.heartbeat("api", "ghost", ttl).await.unwrap(),
            Lease::NotRegistered
        );
        let listed = registry.list("api").await.unwrap();
        assert_eq!(
            listed.iter().map(|i| i.instance.as_str()).collect::<Vec<_>>(),
            ["i1", "i2"]
        );
        assert_eq!(listed[0].meta, meta);
        let picked = registry.pick("api", "user-7").await.unwrap().expect("a live instance");
        assert_eq!(registry.pick("api", "user-7").await.unwrap().as_ref(), Some(&picked));
        assert_eq!(registry.pick("nothing", "k").await.unwrap(), None);
        assert_eq!(registry.services().await.unwrap().get("api"), Some(&2));
        assert!(registry.deregister("api", "i1").await.unwrap());
        assert!(!registry.deregister("api", "i1").await.unwrap());

        // queue
        let queue = Queue::new(client.clone());
        queue.create("jobs", 100, 1 << 20).await.unwrap();
        for i in 0..3u64 {
            assert_eq!(queue.enqueue("jobs", &format!("m{i}")).await.unwrap().offset, i);
        }
        let d = queue.poll("jobs", "g", "c1", 2, ttl).await.unwrap();
        assert_eq!(d.messages.iter().map(|m| m.offset).collect::<Vec<_>>(), [0, 1]);
        assert_eq!((d.committed, d.next, d.lost), (0, 3, 0));
        assert_eq!(queue.commit("jobs", "g", "c1", 2).await.unwrap(), 2);
        let info = queue.info("jobs", Read::Linearizable).await.unwrap();
        assert_eq!((info.first, info.next, info.groups["g"].committed), (0, 3, 2));
        assert_eq!(info.groups["g"].owner.as_deref(), Some("c1"));
        let read = queue.read("jobs", 1, 10, Read::Linearizable).await.unwrap();
        assert_eq!(
            read.messages.iter().map(|m| m.message.as_str()).collect::<Vec<_>>(),
            ["m1", "m2"]
        );
    });
}
