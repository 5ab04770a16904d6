//! `cargo xtask demo config`: versioned keys set, read and listed over HTTP
//! JSON-RPC; a watch from a version returns every later change; a watcher
//! long-polling the leader loses it in a crash, reconnects to another node with the
//! last version it saw, and misses nothing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use examples::config::ConfigStore;
use serde_json::{json, Value};

use super::ctx::{Ctx, Outcome, STEPS};
use super::rpc::{key_values, CallError, Rpc};
use crate::demo::common::wait_until;
use crate::error::TaskError;
use crate::ui::Ui;

pub(super) fn boxed(ctx: &mut Ctx<ConfigStore>) -> Outcome<'_> {
    Box::pin(scenario(ctx))
}

const PREFIX: &str = "app/";

/// A change as a watcher sees it: version, key, value (`None`: deleted).
type Change = (u64, String, Option<String>);

fn changes(v: &Value) -> Vec<Change> {
    v["changes"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| {
                    (
                        c["version"].as_u64().unwrap_or(0),
                        c["key"].as_str().unwrap_or("").to_string(),
                        c["value"].as_str().map(str::to_string),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn show_change((v, k, val): &Change) -> String {
    match val {
        Some(val) => format!("v{v} {k} = {val}"),
        None => format!("v{v} {k} deleted"),
    }
}

/// A write through the leader: its version.
async fn write(ctx: &Ctx<ConfigStore>, key: &str, value: Option<&str>) -> Result<Change, TaskError> {
    let (method, params) = match value {
        Some(v) => ("config_set", json!({"key": key, "value": v})),
        None => ("config_delete", json!({"key": key})),
    };
    // Setting or deleting a key twice leaves the same value, but a retried write
    // would be a second change: never retry one whose outcome is unknown.
    let (_, r) = ctx.rpc.to_leader(Some(&ctx.ui), method, &params, false).await?;
    let version = r["version"].as_u64().ok_or("no version in the answer")?;
    Ok((version, key.to_string(), value.map(str::to_string)))
}

/// A watcher: long-polls `config_watch` from the last version it saw, on `start`
/// first; when its node fails it moves to the next one, from the same version.
fn spawn_watcher(
    ui: Ui,
    rpc: Rpc,
    ids: Vec<String>,
    start: String,
    from: u64,
    seen: Arc<Mutex<Vec<Change>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut node = ids.iter().position(|i| *i == start).unwrap_or(0);
        let mut version = from;
        loop {
            let id = &ids[node];
            let p = json!({"prefix": PREFIX, "version": version, "timeout_ms": 2_000});
            match rpc.call(id, "config_watch", &p, Duration::from_secs(6)).await {
                Ok(r) => {
                    for c in changes(&r) {
                        ui.line(ui.cyan(&format!("  watcher on {id} ← {}", show_change(&c))));
                        if let Ok(mut s) = seen.lock() {
                            s.push(c);
                        }
                    }
                    version = r["version"].as_u64().unwrap_or(version).max(version);
                }
                Err(e) => {
                    let next = &ids[(node + 1) % ids.len()];
                    let why = match &e {
                        CallError::Net(e) => e.clone(),
                        other => other.to_string(),
                    };
                    ui.line(ui.cyan(&format!(
                        "  watcher: {id} failed ({why}); reconnecting to {next} from version {version}"
                    )));
                    node = (node + 1) % ids.len();
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    })
}

async fn scenario(ctx: &mut Ctx<ConfigStore>) -> Result<String, TaskError> {
    let ui = ctx.ui;
    let rpc = ctx.rpc.clone();
    let mut written: Vec<Change> = Vec::new();

    // 3. The API.
    ui.step(3, STEPS, "Set, get and list versioned keys; watch from a version");
    written.push(write(ctx, "app/db/url", Some("postgres://db1/shop")).await?);
    written.push(write(ctx, "app/db/pool", Some("10")).await?);
    written.push(write(ctx, "app/feature/search", Some("off")).await?);
    let leader = ctx.leader().await?.id().to_string();
    let follower = ctx.others(&leader)[0].clone();
    let got = rpc
        .show(&ui, &follower, "config_get", &json!({"key": "app/db/url"}))
        .await?;
    ctx.check(
        got["value"] == json!("postgres://db1/shop") && got["version"] == json!(written[0].0),
        format!(
            "config_get on the follower {follower} returns the value and its version (v{})",
            written[0].0
        ),
    );
    let list = rpc
        .show(&ui, &follower, "config_list", &json!({"prefix": PREFIX}))
        .await?;
    ctx.check(
        list["entries"].as_array().map_or(0, Vec::len) == 3,
        "config_list returns the 3 keys under app/ with their versions",
    );
    let v1 = written[0].0;
    let w = rpc
        .show(
            &ui,
            &follower,
            "config_watch",
            &json!({"prefix": PREFIX, "version": v1, "timeout_ms": 1_000}),
        )
        .await?;
    ctx.check(
        changes(&w) == written[1..],
        format!(
            "config_watch from v{v1} returns at once every change after it (v{} and v{})",
            written[1].0, written[2].0
        ),
    );

    // 4. A watcher on the leader; the leader crashes.
    ui.step(
        4,
        STEPS,
        "A watcher long-polls the leader; kill the leader; keep changing keys",
    );
    let old = ctx.leader().await?;
    let (old_id, old_term) = (old.id().to_string(), old.view().term);
    let from = written.last().map_or(0, |c| c.0);
    ui.line(format!(
        "the watcher calls config_watch {{prefix: {PREFIX:?}, version: {from}, timeout_ms: 2000}} on {old_id} in a loop, from the last version it saw"
    ));
    let seen: Arc<Mutex<Vec<Change>>> = Arc::default();
    let ids: Vec<String> = ctx.local.ports.keys().cloned().collect();
    let watcher = spawn_watcher(ui, rpc.clone(), ids.clone(), old_id.clone(), from, seen.clone());
    tokio::time::sleep(Duration::from_millis(200)).await;
    written.push(write(ctx, "app/db/pool", Some("20")).await?);
    tokio::time::sleep(Duration::from_millis(200)).await;
    ctx.kill(&old_id).await;
    ctx.new_leader(&old_id, old_term).await?;
    written.push(write(ctx, "app/db/pool", Some("30")).await?);
    written.push(write(ctx, "app/feature/search", None).await?);
    written.push(write(ctx, "app/db/url", Some("postgres://db2/shop")).await?);
    written.push(write(ctx, "other/unwatched", Some("x")).await?);
    written.push(write(ctx, "app/feature/checkout", Some("on")).await?);
    let last = written
        .iter()
        .filter(|c| c.1.starts_with(PREFIX))
        .map(|c| c.0)
        .max()
        .unwrap_or(0);
    let _ = wait_until(Duration::from_secs(10), || {
        seen.lock().map(|s| s.last().map_or(0, |c| c.0)).unwrap_or(0) >= last
    })
    .await;
    watcher.abort();
    let _ = watcher.await;
    let seen: Vec<Change> = seen.lock().map(|s| s.clone()).unwrap_or_default();
    let expected: Vec<Change> = written
        .iter()
        .filter(|c| c.0 > from && c.1.starts_with(PREFIX))
        .cloned()
        .collect();
    let versions = |cs: &[Change]| cs.iter().map(|c| format!("v{}", c.0)).collect::<Vec<_>>().join(" ");
    ctx.check(
        seen == expected,
        format!(
            "the watcher saw every change under app/ after v{from}, in order, none missed or repeated across the crash: {}",
            versions(&seen)
        ),
    );
    ui.note("versions are log indexes: the gaps are entries that change nothing under app/ (a new leader's no-op, other/unwatched)");

    // 5. Restart.
    ctx.restart(&old_id).await?;
    let got = rpc
        .show(&ui, &old_id, "config_get", &json!({"key": "app/db/url"}))
        .await?;
    ctx.check(
        got["value"] == json!("postgres://db2/shop"),
        format!("{old_id} serves the value set while it was down"),
    );

    // 6. Verify.
    ui.step(6, STEPS, "Verify on every node (config_list over HTTP, linearizable)");
    let mut lists = Vec::new();
    for id in &ids {
        match rpc
            .call(id, "config_list", &json!({"prefix": ""}), Duration::from_secs(10))
            .await
        {
            Ok(l) => lists.push(l["entries"].clone()),
            Err(e) => ui.bad(format!("{id}: config_list -> {e}")),
        }
    }
    let same = lists.len() == ids.len() && lists.windows(2).all(|w| w[0] == w[1]);
    ctx.check(
        same,
        format!(
            "every node ({} of {}) lists the same keys, values and versions",
            lists.len(),
            ids.len()
        ),
    );
    let want = [
        ("app/db/pool", "30"),
        ("app/db/url", "postgres://db2/shop"),
        ("app/feature/checkout", "on"),
        ("other/unwatched", "x"),
    ];
    let got: Vec<(String, String)> = lists.first().map(key_values).unwrap_or_default();
    ctx.check(
        got.iter().map(|(k, v)| (k.as_str(), v.as_str())).eq(want),
        "the keys hold the last acknowledged values (app/feature/search deleted)",
    );
    Ok(format!(
        "the watcher saw all {} changes ({}) in order across a leader crash; {} nodes list the same {} keys",
        seen.len(),
        versions(&seen),
        ids.len(),
        got.len()
    ))
}
