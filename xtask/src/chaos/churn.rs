//! Membership churn, through the nodes' admin JSON-RPC methods (`admin_status`,
//! `admin_changeMembership`, see [`super::node`]), while the other faults go on.
//!
//! One step reads the membership from the leader and moves it on:
//! - no learner: a new node (a never-used slot: new id, port and data directory)
//!   starts empty and is added as a learner; once it has caught up, the step goes on
//!   to the promotion (or, one time in three, leaves it a learner for the next step);
//! - a learner: it is promoted and a voter chosen at random (the leader included) is
//!   removed, in one joint change, so the cluster keeps its number of voters; once
//!   the new configuration is committed, the removed node is stopped and its data
//!   deleted.
//!
//! Every call is retried on whichever node is the leader now; a change whose outcome
//! is unknown is settled by reading the membership again, never by guessing.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::client::{call, Shared};
use super::procs::Procs;
use crate::rng::Rng;

/// How long one step may take before it gives up (and reports it).
const STEP: Duration = Duration::from_secs(60);

/// The membership as the leader reports it.
#[derive(Debug)]
struct Config {
    leader: String,
    commit: u64,
    voters: Vec<String>,
    outgoing: Vec<String>,
    learners: Vec<String>,
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// `admin_status` of node `id`.
async fn status(shared: &Shared, id: &str) -> Option<Value> {
    let port = shared.ports.get(id).copied()?;
    call(port, &shared.token, "admin_status", &json!({})).await
}

/// The leader's view of the membership (waits for a leader that answers).
async fn config(procs: &Procs, shared: &Shared, deadline: Instant) -> Option<Config> {
    while Instant::now() < deadline {
        if let Some(leader) = procs.leader() {
            if let Some(v) = status(shared, &leader).await {
                if v["role"] == "leader" {
                    return Some(Config {
                        leader,
                        commit: v["commit"].as_u64().unwrap_or(0),
                        voters: strings(&v["voters"]),
                        outgoing: strings(&v["voters_outgoing"]),
                        learners: strings(&v["learners"]),
                    });
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

/// Asks the leader for `changes`; `true` if it answered that they are committed. Any
/// other outcome is settled by the caller reading the membership again.
async fn change(shared: &Shared, leader: &str, changes: Value) -> bool {
    let port = shared.ports.get(leader).copied().unwrap_or(0);
    call(
        port,
        &shared.token,
        "admin_changeMembership",
        &json!({ "changes": changes }),
    )
    .await
    .is_some()
}

/// One churn step; what it did, and an anomaly if it could not finish.
pub(crate) async fn step(procs: &Procs, shared: &Shared, mut rng: Rng) -> (String, Option<String>) {
    let deadline = Instant::now() + STEP;
    let mut done = Vec::new();
    let give_up = |done: &[String], why: String| {
        let what = if done.is_empty() {
            "nothing".to_string()
        } else {
            done.join("; ")
        };
        (what, Some(why))
    };
    // A learner: the one in the configuration, or a new node added now.
    let learner = loop {
        let Some(c) = config(procs, shared, deadline).await else {
            return give_up(&done, "no leader answered admin_status within 60 s".into());
        };
        if !c.outgoing.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        if let Some(l) = c.learners.first() {
            break l.clone();
        }
        let Some(id) = procs.take_spare() else {
            return ("no spare node slot left: no change".into(), None);
        };
        if let Err(e) = procs.spawn(&id) {
            return give_up(&done, format!("cannot start {id}: {e}"));
        }
        // Add it (retried until the configuration says so).
        loop {
            let Some(c) = config(procs, shared, deadline).await else {
                return give_up(&done, format!("no leader to add {id} as a learner"));
            };
            if c.learners.contains(&id) || c.voters.contains(&id) {
                break;
            }
            if c.outgoing.is_empty() && !change(shared, &c.leader, json!([{"op": "addLearner", "id": id}])).await {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
        done.push(format!("added {id} (a new node) as a learner"));
        break id;
    };
    // Caught up: its applied index reaches the leader's commit index as read now.
    let mut caught_up = false;
    while Instant::now() < deadline {
        let Some(c) = config(procs, shared, deadline).await else {
            break;
        };
        if let Some(v) = status(shared, &learner).await {
            if v["applied"].as_u64().unwrap_or(0) >= c.commit {
                caught_up = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    if !caught_up {
        return give_up(&done, format!("learner {learner} did not catch up within 60 s"));
    }
    if !done.is_empty() && rng.below(3) == 0 {
        done.push(format!("{learner} caught up; left a learner"));
        return (done.join("; "), None);
    }
    // Promote it and remove a voter, in one joint change.
    let mut victim: Option<String> = None;
    loop {
        let Some(c) = config(procs, shared, deadline).await else {
            return give_up(&done, format!("no leader to promote {learner}"));
        };
        if !c.outgoing.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        let promoted = c.voters.contains(&learner);
        match &victim {
            Some(v) if promoted && !c.voters.contains(v) && !c.learners.contains(v) => break,
            Some(v) if promoted => {
                return give_up(
                    &done,
                    format!("{learner} is a voter but {v} still in the configuration: {c:?}"),
                )
            }
            _ if promoted => return give_up(&done, format!("{learner} became a voter on its own: {c:?}")),
            _ => {}
        }
        let v = victim
            .get_or_insert_with(|| {
                let leader_too = c.voters.clone();
                rng.pick(&leader_too).cloned().unwrap_or_default()
            })
            .clone();
        let was_leader = if v == c.leader { " (the leader)" } else { "" };
        let changes = json!([{"op": "promote", "id": learner}, {"op": "remove", "id": v}]);
        if change(shared, &c.leader, changes).await {
            done.push(format!("promoted {learner} and removed {v}{was_leader} (joint change)"));
        } else {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        if Instant::now() > deadline {
            return give_up(
                &done,
                format!("the promotion of {learner} did not complete within 60 s"),
            );
        }
    }
    if !done.iter().any(|d| d.starts_with("promoted")) {
        if let Some(v) = &victim {
            done.push(format!(
                "promoted {learner} and removed {v} (joint change, outcome read back)"
            ));
        }
    }
    if let Some(v) = victim {
        procs.retire(&v);
        done.push(format!("stopped {v} and deleted its data"));
    }
    (done.join("; "), None)
}
