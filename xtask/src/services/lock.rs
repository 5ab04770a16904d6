//! `cargo xtask demo lock`: two owners contend for one lock, a waiter gets it on
//! release, a stale token is refused, the holder's lease survives a leader crash, an
//! expired lease passes to a waiter (by log time), and every fencing token is larger
//! than the one before.

use std::time::{Duration, Instant};

use examples::lock::LockTable;
use serde_json::{json, Value};

use super::ctx::{Ctx, Outcome, STEPS};
use super::rpc::CallError;
use crate::error::TaskError;
use crate::ui::secs;

pub(super) fn boxed(ctx: &mut Ctx<LockTable>) -> Outcome<'_> {
    Box::pin(scenario(ctx))
}

const LOCK: &str = "orders";
const TTL: u64 = 15_000;

fn token(v: &Value) -> Option<u64> {
    v["token"].as_u64().filter(|_| v["granted"] == json!(true))
}

/// An acquire that may wait: the answer and how long it took.
async fn acquire(ctx: &Ctx<LockTable>, owner: &str, ttl_ms: u64, wait_ms: u64) -> Result<(Value, Duration), CallError> {
    let mut p = json!({"name": LOCK, "owner": owner, "ttl_ms": ttl_ms});
    if wait_ms > 0 {
        p["wait_ms"] = json!(wait_ms);
    }
    let started = Instant::now();
    // Not retried when the outcome is unknown: a second acquire would be refused as
    // "held" even if the first one was granted.
    let (_, v) = ctx.rpc.to_leader(Some(&ctx.ui), "lock_acquire", &p, false).await?;
    Ok((v, started.elapsed()))
}

async fn scenario(ctx: &mut Ctx<LockTable>) -> Result<String, TaskError> {
    let ui = ctx.ui;
    let rpc = ctx.rpc.clone();
    let mut tokens: Vec<(String, u64)> = Vec::new();

    // 3. Contention.
    ui.step(3, STEPS, &format!("Two owners contend for the lock {LOCK:?}"));
    let (a, _) = acquire(ctx, "alice", TTL, 0).await?;
    let t1 = token(&a).ok_or("alice did not get the free lock")?;
    tokens.push(("alice".into(), t1));
    let (b, _) = acquire(ctx, "bob", TTL, 0).await?;
    ctx.check(
        b["granted"] == json!(false) && b["holder"] == json!("alice"),
        "bob is refused while alice holds the lock (the answer names the holder)",
    );
    let leader = ctx.leader().await?.id().to_string();
    let follower = ctx.others(&leader)[0].clone();
    let h = rpc.show(&ui, &follower, "lock_holder", &json!({"name": LOCK})).await?;
    ctx.check(
        h["holder"]["owner"] == json!("alice") && h["holder"]["token"] == json!(t1),
        format!("the follower {follower} agrees alice holds it with fencing token {t1}"),
    );
    ui.line("bob now waits for the lock (wait_ms 5000) while alice finishes and releases it:");
    let waiter = {
        let rpc = rpc.clone();
        let p = json!({"name": LOCK, "owner": "bob", "ttl_ms": TTL, "wait_ms": 5_000});
        tokio::spawn(async move {
            let started = Instant::now();
            rpc.to_leader(None, "lock_acquire", &p, false)
                .await
                .map(|(id, v)| (id, v, started.elapsed()))
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    rpc.to_leader(
        Some(&ui),
        "lock_release",
        &json!({"name": LOCK, "owner": "alice", "token": t1}),
        false,
    )
    .await?;
    let (id, b, waited) = waiter.await??;
    ui.line(format!(
        "→ {id}  lock_acquire {{\"name\":\"{LOCK}\",\"owner\":\"bob\",\"ttl_ms\":{TTL},\"wait_ms\":5000}}"
    ));
    ui.line(ui.dim(&format!("  ← {b}   (after waiting {})", secs(waited))));
    let t2 = token(&b);
    ctx.check(
        t2.is_some_and(|t| t > t1),
        format!(
            "the waiter bob got the lock once alice released it, with a larger fencing token ({} > {t1})",
            t2.map_or("-".into(), |t| t.to_string())
        ),
    );
    let t2 = t2.ok_or("bob did not get the lock")?;
    tokens.push(("bob".into(), t2));
    let (_, stale) = rpc
        .to_leader(
            Some(&ui),
            "lock_release",
            &json!({"name": LOCK, "owner": "alice", "token": t1}),
            false,
        )
        .await?;
    ctx.check(
        stale["not_holder"] == json!(true),
        format!("alice's old token {t1} can no longer release the lock bob holds"),
    );

    // 4. Leader crash while bob holds the lock.
    ui.step(4, STEPS, "Kill the leader while bob holds the lock");
    let old = ctx.leader().await?;
    let (old_id, old_term) = (old.id().to_string(), old.view().term);
    ctx.kill(&old_id).await;
    ctx.new_leader(&old_id, old_term).await?;
    let (c, _) = acquire(ctx, "carol", TTL, 0).await?;
    ctx.check(
        c["granted"] == json!(false) && c["holder"] == json!("bob"),
        "bob's lease survived the crash: carol is refused, the answer names bob",
    );
    let (_, r) = rpc
        .to_leader(
            Some(&ui),
            "lock_renew",
            &json!({"name": LOCK, "owner": "bob", "token": t2, "ttl_ms": TTL}),
            false,
        )
        .await?;
    ctx.check(
        r["granted"] == json!(true) && r["token"] == json!(t2),
        format!("bob renews his lease on the new leader with the same token {t2}"),
    );
    rpc.to_leader(
        Some(&ui),
        "lock_release",
        &json!({"name": LOCK, "owner": "bob", "token": t2}),
        false,
    )
    .await?;
    ui.line("carol takes the lock with a short lease (800 ms) and then never renews it, as a crashed client would:");
    let (c, _) = acquire(ctx, "carol", 800, 2_000).await?;
    let t3 = token(&c).ok_or("carol did not get the released lock")?;
    tokens.push(("carol".into(), t3));
    let (d, waited) = acquire(ctx, "dave", TTL, 5_000).await?;
    let t4 = token(&d);
    ctx.check(
        t4.is_some_and(|t| t > t3) && waited >= Duration::from_millis(300),
        format!(
            "dave waited {} for carol's lease to run out (by time carried in the log) and got token {} > {t3}",
            secs(waited),
            t4.map_or("-".into(), |t| t.to_string())
        ),
    );
    let t4 = t4.ok_or("dave did not get the expired lock")?;
    tokens.push(("dave".into(), t4));

    // 5. Restart.
    ctx.restart(&old_id).await?;
    let h = rpc.show(&ui, &old_id, "lock_holder", &json!({"name": LOCK})).await?;
    ctx.check(
        h["holder"]["owner"] == json!("dave"),
        format!("{old_id} names the holder granted while it was down (dave)"),
    );

    // 6. Verify.
    ui.step(6, STEPS, "Verify on every node (lock_holder over HTTP, linearizable)");
    let ids: Vec<String> = ctx.local.ports.keys().cloned().collect();
    let mut agree = 0;
    for id in &ids {
        match rpc
            .call(id, "lock_holder", &json!({"name": LOCK}), Duration::from_secs(10))
            .await
        {
            Ok(h) if h["holder"]["owner"] == json!("dave") && h["holder"]["token"] == json!(t4) => agree += 1,
            Ok(h) => ui.bad(format!("{id}: lock_holder -> {h}")),
            Err(e) => ui.bad(format!("{id}: lock_holder -> {e}")),
        }
    }
    ctx.check(
        agree == ids.len(),
        format!(
            "every node ({agree} of {}) names the same holder: dave with token {t4}",
            ids.len()
        ),
    );
    let chain: Vec<String> = tokens.iter().map(|(o, t)| format!("{t} ({o})")).collect();
    ctx.check(
        tokens.windows(2).all(|w| w[0].1 < w[1].1),
        format!("fencing tokens strictly increase: {}", chain.join(" < ")),
    );
    Ok(format!(
        "one holder at a time through a leader crash; fencing tokens {} strictly increase; every node names dave",
        tokens
            .iter()
            .map(|(_, t)| t.to_string())
            .collect::<Vec<_>>()
            .join(" < ")
    ))
}
