//! `cargo xtask demo kv`: put, get, cas and scan over HTTP JSON-RPC, a follower's
//! redirect, four writers through a leader crash (with `easyraft-client`, as an
//! application would write: it follows the leader and retries what is safe), then
//! every node read back.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use easyraft_client::client::{Call, Client, Protocol, Settings};
use easyraft_client::endpoint::Endpoint;
use easyraft_client::policy::CallKind;
use examples::api::NOT_LEADER;
use examples::kv::KvStore;
use examples::runner::TOKEN;
use serde_json::json;

use super::ctx::{Ctx, Outcome, STEPS};
use super::rpc::{key_values, CallError};
use crate::error::TaskError;
use crate::ui::secs;

pub(super) fn boxed(ctx: &mut Ctx<KvStore>) -> Outcome<'_> {
    Box::pin(scenario(ctx))
}

async fn scenario(ctx: &mut Ctx<KvStore>) -> Result<String, TaskError> {
    let ui = ctx.ui;
    let rpc = ctx.rpc.clone();

    // 3. The API.
    ui.step(3, STEPS, "Use the API like any JSON-RPC client: put, get, cas, scan");
    let leader = ctx.leader().await?.id().to_string();
    let others = ctx.others(&leader);
    let (f1, f2) = (others[0].clone(), others[others.len() - 1].clone());
    let put = json!({"key": "greeting", "value": "hello"});
    let r = rpc.show(&ui, &f1, "kv_put", &put).await;
    let want_addr = format!("127.0.0.1:{}", rpc.addr(&leader).port());
    let redirected = matches!(&r, Err(CallError::Rpc { code, data, .. })
        if *code == i64::from(NOT_LEADER) && data["leader"] == json!(leader) && data["address"] == json!(want_addr));
    ctx.check(
        redirected,
        format!("the follower {f1} does not write: error -32020 names the leader {leader} at {want_addr}"),
    );
    rpc.show(&ui, &leader, "kv_put", &put).await?;
    let got = rpc.show(&ui, &f1, "kv_get", &json!({"key": "greeting"})).await?;
    ctx.check(
        got["value"] == json!("hello"),
        format!("a read on the follower {f1} sees the write (reads are linearizable on every node)"),
    );
    let stale = rpc
        .show(
            &ui,
            &leader,
            "kv_cas",
            &json!({"key": "greeting", "expected": "hi", "new": "hello, world"}),
        )
        .await?;
    ctx.check(
        stale["ok"] == json!(false) && stale["previous"] == json!("hello"),
        "kv_cas with a stale expectation changes nothing and returns the current value",
    );
    let cas = rpc
        .show(
            &ui,
            &leader,
            "kv_cas",
            &json!({"key": "greeting", "expected": "hello", "new": "hello, world"}),
        )
        .await?;
    ctx.check(cas["ok"] == json!(true), "kv_cas with the right expectation wins");
    for (k, v) in [
        ("app/db/url", "postgres://db1/shop"),
        ("app/db/pool", "10"),
        ("app/name", "shop"),
    ] {
        rpc.to_leader(Some(&ui), "kv_put", &json!({"key": k, "value": v}), true)
            .await?;
    }
    let scan = rpc.show(&ui, &f2, "kv_scan", &json!({"prefix": "app/"})).await?;
    let keys: Vec<&str> = scan["pairs"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p["key"].as_str()).collect())
        .unwrap_or_default();
    ctx.check(
        keys == ["app/db/pool", "app/db/url", "app/name"],
        format!("kv_scan on {f2} returns the 3 keys under app/ in order"),
    );

    // 4. Leader crash under load.
    let lanes = 4;
    let total = ctx.opts.writes.max(8);
    ui.step(
        4,
        STEPS,
        &format!("Kill the leader while {lanes} clients write {total} keys"),
    );
    let old = ctx.leader().await?;
    let (old_id, old_term) = (old.id().to_string(), old.view().term);
    let done = Arc::new(AtomicUsize::new(0));
    let acked: Arc<Mutex<Vec<(String, String, Instant)>>> = Arc::default();
    let client = writers_client(ctx)?;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for lane in 0..lanes {
        let (client, done, acked) = (client.clone(), done.clone(), acked.clone());
        tasks.spawn(async move {
            for i in (lane..total).step_by(lanes) {
                let (key, value) = (format!("load-{i:03}"), format!("value {i}"));
                // A put is idempotent: the client retries one whose outcome is unknown.
                // (`admin`: this demo's API wants its cluster token on every call.)
                let put = Call::new("kv_put", CallKind::IdempotentWrite, json!({"key": key, "value": value})).admin();
                client.call(&put).await?;
                if let Ok(mut a) = acked.lock() {
                    a.push((key, value, Instant::now()));
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, easyraft_client::Error>(())
        });
    }
    while done.load(Ordering::Relaxed) < total / 4 && !tasks.is_empty() && started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let at_kill = done.load(Ordering::Relaxed);
    let killed_at = Instant::now();
    ui.line(format!("{at_kill} of {total} writes acknowledged so far; now:"));
    ctx.kill(&old_id).await;
    let new = ctx.new_leader(&old_id, old_term).await?;
    let (res, took) = ui
        .spin(
            || format!("writing {}/{total} keys load-*", done.load(Ordering::Relaxed)),
            async {
                while let Some(r) = tasks.join_next().await {
                    r??;
                }
                Ok::<_, TaskError>(())
            },
        )
        .await;
    res?;
    let acked: Vec<(String, String, Instant)> = acked.lock().map(|a| a.clone()).unwrap_or_default();
    let after = acked.iter().filter(|(_, _, t)| *t > killed_at).count();
    ui.ok(format!(
        "all {total} writes acknowledged in {} ({after} of them after the kill; easyraft-client found the new leader)",
        secs(started.elapsed().max(took))
    ));
    ctx.check(
        after > 0 && acked.len() == total,
        format!("the service kept taking writes through {}'s crash", old_id),
    );
    let got = rpc
        .show(&ui, new.id().as_str(), "kv_get", &json!({"key": "greeting"}))
        .await?;
    ctx.check(
        got["value"] == json!("hello, world"),
        format!(
            "the new leader {} serves the CAS the old leader acknowledged (greeting = \"hello, world\")",
            new.id()
        ),
    );

    // 5. Restart.
    ctx.restart(&old_id).await?;
    let got = rpc
        .show(
            &ui,
            &old_id,
            "kv_get",
            &json!({"key": format!("load-{:03}", total - 1)}),
        )
        .await?;
    ctx.check(
        got["value"] == json!(format!("value {}", total - 1)),
        format!("{old_id} serves a write it missed while it was down"),
    );

    // 6. Verify.
    ui.step(6, STEPS, "Verify on every node (kv_scan over HTTP, linearizable)");
    let mut maps: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for id in rpc_ids(ctx) {
        let scan = rpc
            .call(
                &id,
                "kv_scan",
                &json!({"prefix": "", "limit": 10_000}),
                Duration::from_secs(10),
            )
            .await;
        match scan {
            Ok(v) => {
                maps.insert(id, key_values(&v["pairs"]).into_iter().collect());
            }
            Err(e) => ui.bad(format!("kv_scan on {id}: {e}")),
        }
    }
    let n = ctx.opts.nodes;
    let mut expected: BTreeMap<String, String> = acked.iter().map(|(k, v, _)| (k.clone(), v.clone())).collect();
    expected.insert("greeting".into(), "hello, world".into());
    for (k, v) in [
        ("app/db/url", "postgres://db1/shop"),
        ("app/db/pool", "10"),
        ("app/name", "shop"),
    ] {
        expected.insert(k.into(), v.into());
    }
    let lost: usize = maps
        .values()
        .map(|m| expected.iter().filter(|(k, v)| m.get(*k) != Some(*v)).count())
        .sum();
    ctx.check(
        maps.len() == n && lost == 0,
        format!(
            "every acknowledged write ({}) read back from every node ({} of {n})",
            expected.len(),
            maps.len()
        ),
    );
    let same = maps.values().collect::<Vec<_>>().windows(2).all(|w| w[0] == w[1]);
    ctx.check(same, "every node holds exactly the same key-value pairs");
    let keys = maps.values().next().map_or(0, BTreeMap::len);
    Ok(format!(
        "{n} kv nodes agree on {keys} keys; every acknowledged write ({}) read back from every node over HTTP",
        expected.len()
    ))
}

/// The writers' `easyraft-client`: every node's API, 2 s per attempt, 20 s per write.
fn writers_client(ctx: &Ctx<KvStore>) -> Result<Client, TaskError> {
    let endpoints: Vec<String> = ctx.local.ports.values().map(|p| format!("127.0.0.1:{p}")).collect();
    Ok(Client::new(Settings {
        endpoints: Endpoint::parse_list(&endpoints)?,
        connect_timeout: Duration::from_secs(1),
        timeout: Duration::from_secs(2),
        deadline: Duration::from_secs(20),
        admin_token: Some(TOKEN.into()),
        cacert: None,
        protocol: Protocol::Http,
    })?)
}

fn rpc_ids(ctx: &Ctx<KvStore>) -> Vec<String> {
    ctx.local.ports.keys().cloned().collect()
}
