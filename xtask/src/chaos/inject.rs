//! Injecting the faults: which, on whom, for how long, all chosen by the run's seeded
//! RNG, each healed before the next.
//!
//! Faults come one at a time, healed before the next, except the membership churn,
//! which runs in the background while the next faults are injected.

use std::sync::Arc;
use std::time::{Duration, Instant};

use easyraft::NodeId;
use serde_json::json;

use super::client::{call, Shared};
use super::faults::{Fault, FaultEvent};
use super::procs::Procs;
use crate::relay::Relays;
use crate::rng::Rng;

/// Injects faults one at a time until `until`, and in any case until every kind in
/// `kinds` happened once; heals after each. Calls `log` with each line to print.
pub(crate) async fn inject(
    shared: &Arc<Shared>,
    relays: &Relays,
    rng: &mut Rng,
    kinds: &[Fault],
    start: Instant,
    until: Instant,
    log: &(dyn Fn(&str) + Send + Sync),
) -> std::io::Result<Vec<FaultEvent>> {
    let procs = &shared.procs;
    let mut events = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut round: Vec<Fault> = Vec::new();
    let mut churn: Option<tokio::task::JoinHandle<FaultEvent>> = None;
    while (Instant::now() < until || kinds.iter().any(|k| !seen.contains(k))) && !kinds.is_empty() {
        if round.is_empty() {
            round = kinds.to_vec();
            rng.shuffle(&mut round);
        }
        let fault = round.remove(0);
        if fault == Fault::Churn {
            if churn.as_ref().is_some_and(|c| !c.is_finished()) {
                // One change at a time; do not spin when churn is the only kind.
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            if let Some(done) = churn.take() {
                if let Ok(e) = done.await {
                    events.push(e);
                }
            }
            seen.insert(fault);
            let seed = rng.next_u64();
            let (procs, shared) = (procs.clone(), shared.clone());
            let at = start.elapsed();
            log(&format!(
                "{:>6.1}s  churn: a membership change starts",
                at.as_secs_f64()
            ));
            churn = Some(tokio::spawn(async move {
                let began = Instant::now();
                let (what, anomaly) = super::churn::step(&procs, &shared, Rng::new(seed)).await;
                let e = FaultEvent {
                    fault: Fault::Churn,
                    at,
                    held: began.elapsed(),
                    what,
                    anomaly,
                };
                println!(
                    "{:>6.1}s  churn done: {}{}",
                    shared.start.elapsed().as_secs_f64(),
                    e.what,
                    e.anomaly
                        .as_ref()
                        .map_or(String::new(), |a| format!(" -- ANOMALY: {a}"))
                );
                e
            }));
            tokio::time::sleep(Duration::from_millis(rng.range(200, 500))).await;
            continue;
        }
        seen.insert(fault);
        let event = one(procs, shared, relays, rng, fault, start, log).await?;
        log(&format!(
            "{:>6.1}s  healed: {}{}",
            start.elapsed().as_secs_f64(),
            event.what,
            event
                .anomaly
                .as_ref()
                .map_or(String::new(), |a| format!(" -- ANOMALY: {a}"))
        ));
        events.push(event);
        tokio::time::sleep(Duration::from_millis(rng.range(1000, 2000))).await;
        restart_exited(procs, start, log)?;
    }
    if let Some(done) = churn.take() {
        log(&format!(
            "{:>6.1}s  waiting for the membership change in flight",
            start.elapsed().as_secs_f64()
        ));
        if let Ok(e) = done.await {
            events.push(e);
        }
    }
    restart_exited(procs, start, log)?;
    events.sort_by_key(|e| e.at);
    Ok(events)
}

/// Restarts the members that exited on their own.
fn restart_exited(procs: &Procs, start: Instant, log: &(dyn Fn(&str) + Send + Sync)) -> std::io::Result<()> {
    for (id, status) in procs.exited() {
        log(&format!(
            "{:>6.1}s  {id} EXITED on its own ({status}): restarting it",
            start.elapsed().as_secs_f64()
        ));
        procs.kill(&id);
        procs.spawn(&id)?;
    }
    Ok(())
}

/// One fault, held, then healed.
async fn one(
    procs: &Procs,
    shared: &Shared,
    relays: &Relays,
    rng: &mut Rng,
    fault: Fault,
    start: Instant,
    log: &(dyn Fn(&str) + Send + Sync),
) -> std::io::Result<FaultEvent> {
    let ids = procs.members();
    let n = ids.len();
    let leader = procs.leader();
    let target = match (&leader, rng.below(2)) {
        (Some(l), 0) => l.clone(),
        _ => rng.pick(&ids).cloned().unwrap_or_default(),
    };
    let role = |id: &str| {
        if leader.as_deref() == Some(id) {
            " (the leader)"
        } else {
            ""
        }
    };
    let others = |me: &str| ids.iter().filter(|i| *i != me).cloned().collect::<Vec<_>>();
    let mut hold = Duration::from_millis(rng.range(1000, 3000));
    let at = start.elapsed();
    let t = || format!("{:>6.1}s ", start.elapsed().as_secs_f64());
    let mut anomaly = None;
    let what = match fault {
        Fault::Kill => {
            procs.kill(&target);
            log(&format!("{} kill -KILL {target}{}", t(), role(&target)));
            tokio::time::sleep(hold).await;
            procs.spawn(&target)?;
            format!("SIGKILLed {target}{}, restarted it after {hold:.1?}", role(&target))
        }
        Fault::Pause => {
            procs.pause(&target)?;
            log(&format!("{} kill -STOP {target}{}", t(), role(&target)));
            tokio::time::sleep(hold).await;
            procs.resume(&target)?;
            format!("froze {target}{} for {hold:.1?}", role(&target))
        }
        Fault::Partition => {
            let mut side: Vec<String> = match (&leader, rng.below(2)) {
                (Some(l), 0) => vec![l.clone()],
                _ => {
                    let mut all = ids.clone();
                    rng.shuffle(&mut all);
                    all.truncate(1 + rng.below((n.saturating_sub(1) / 2).max(1)));
                    all
                }
            };
            side.sort();
            relays.cut(side.iter().map(NodeId::new));
            let desc = side
                .iter()
                .map(|s| format!("{s}{}", role(s)))
                .collect::<Vec<_>>()
                .join(", ");
            log(&format!("{} partition: [{desc}] cut off from the others", t()));
            tokio::time::sleep(hold).await;
            relays.heal();
            format!("cut [{desc}] off for {hold:.1?}")
        }
        Fault::Loss => {
            // Some of the target's links, both directions, lose 20-60% of their packets.
            let mut peers = others(&target);
            rng.shuffle(&mut peers);
            peers.truncate(1 + rng.below(peers.len().max(1)));
            peers.sort();
            let rate = rng.range(20, 61) as f64 / 100.0;
            hold = Duration::from_millis(rng.range(2000, 5000));
            let links = peers.iter().flat_map(|p| {
                [
                    (NodeId::new(&target), NodeId::new(p)),
                    (NodeId::new(p), NodeId::new(&target)),
                ]
            });
            relays.lossy(links, rate);
            let desc = format!(
                "links {target}{} <-> [{}] lose {:.0}% of their packets",
                role(&target),
                peers.join(", "),
                rate * 100.0
            );
            log(&format!("{} loss: {desc}", t()));
            tokio::time::sleep(hold).await;
            relays.heal();
            format!("{desc} for {hold:.1?}")
        }
        Fault::OneWay => {
            let peers = others(&target);
            let (links, desc): (Vec<(String, String)>, String) = match rng.below(3) {
                0 => {
                    let p = rng.pick(&peers).cloned().unwrap_or_default();
                    (
                        vec![(target.clone(), p.clone())],
                        format!("{target}{} -> {p} blocked ({p} -> {target} passes)", role(&target)),
                    )
                }
                1 => (
                    peers.iter().map(|p| (target.clone(), p.clone())).collect(),
                    format!(
                        "every link out of {target}{} blocked (links into it pass)",
                        role(&target)
                    ),
                ),
                _ => (
                    peers.iter().map(|p| (p.clone(), target.clone())).collect(),
                    format!(
                        "every link into {target}{} blocked (links out of it pass)",
                        role(&target)
                    ),
                ),
            };
            relays.block(links.iter().map(|(a, b)| (NodeId::new(a), NodeId::new(b))));
            log(&format!("{} one-way: {desc}", t()));
            tokio::time::sleep(hold).await;
            relays.heal();
            format!("{desc} for {hold:.1?}")
        }
        Fault::Skew => {
            let rate = if rng.below(2) == 0 {
                rng.range(150, 201) as f64 / 100.0
            } else {
                rng.range(50, 71) as f64 / 100.0
            };
            hold = Duration::from_millis(rng.range(3000, 6000));
            procs.set_rate(&target, rate);
            procs.spawn(&target)?;
            log(&format!(
                "{} skew: {target}{} restarted with its clock at {rate:.2}x",
                t(),
                role(&target)
            ));
            tokio::time::sleep(hold).await;
            procs.set_rate(&target, 1.0);
            procs.spawn(&target)?;
            format!(
                "{target}{} ran with its clock at {rate:.2}x for {hold:.1?}, restarted with an exact clock",
                role(&target)
            )
        }
        Fault::DiskEio | Fault::DiskFull => {
            let kind = if fault == Fault::DiskEio { "eio" } else { "enospc" };
            let port = procs.ports.get(&target).copied().unwrap_or(0);
            let armed = call(port, &shared.token, "admin_diskFault", &json!({ "kind": kind }))
                .await
                .is_some();
            let fails = if fault == Fault::DiskEio {
                "every fsync fails with EIO"
            } else {
                "the disk is full (ENOSPC)"
            };
            log(&format!("{} disk: {target}{}: {fails}", t(), role(&target)));
            let began = Instant::now();
            let mut exited = None;
            while armed && began.elapsed() < Duration::from_secs(8) {
                if let Some((_, status)) = procs.exited().into_iter().find(|(id, _)| *id == target) {
                    exited = Some(status);
                    break;
                }
                if !procs.has_process(&target) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            hold = began.elapsed();
            let outcome = match (&exited, armed) {
                (Some(status), _) => format!("it stopped after {hold:.1?} ({status})"),
                (None, false) => "the fault could not be armed (the node was not answering)".to_string(),
                (None, true) if !procs.is_member(&target) || !procs.has_process(&target) => {
                    "it left the cluster or was stopped meanwhile".to_string()
                }
                (None, true) => {
                    anomaly = Some(format!(
                        "{target} kept running {hold:.1?} after {kind} was armed (a node should stop on a failed write)"
                    ));
                    "it KEPT RUNNING".to_string()
                }
            };
            tokio::time::sleep(Duration::from_millis(rng.range(200, 1500))).await;
            procs.kill(&target);
            procs.spawn(&target)?;
            format!("{target}{}: {fails}; {outcome}; restarted on its data", role(&target))
        }
        Fault::DiskSlow => {
            let delay = rng.range(1000, 4000);
            hold = Duration::from_millis(rng.range(3000, 7000));
            let port = procs.ports.get(&target).copied().unwrap_or(0);
            let params = json!({ "kind": "slow", "ms": delay, "for_ms": hold.as_millis() as u64 });
            let armed = call(port, &shared.token, "admin_diskFault", &params).await.is_some();
            log(&format!(
                "{} disk: {target}{}: every fsync takes {delay} ms longer",
                t(),
                role(&target)
            ));
            tokio::time::sleep(hold + Duration::from_millis(delay)).await;
            format!(
                "{target}{}: fsyncs {delay} ms slower for {hold:.1?}{}",
                role(&target),
                if armed {
                    ""
                } else {
                    " (could not be armed: the node was not answering)"
                }
            )
        }
        Fault::Churn => String::from("churn runs in the background"),
    };
    Ok(FaultEvent {
        fault,
        at,
        held: hold,
        what,
        anomaly,
    })
}
