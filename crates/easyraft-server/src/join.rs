//! A node's own membership, from its side: joining a running cluster through `join`
//! (added as a learner, caught up, promoted, and the member it replaces removed) and
//! leaving it. The calls go to the leader through the members' client ports, and
//! refusals that mean "not yet" are retried until a deadline.

use std::time::Duration;

use easyraft::discovery::discovery_from_url;
use easyraft::RaftHandle;
use serde_json::{json, Value};
use tracing::{debug, info};

use crate::client::Caller;
use crate::config::{is_discovery_url, Config};
use crate::directory::{Directory, MemberAddress, Members};
use crate::error::ServerError;
use crate::machine::ServerMachine;
use crate::rpc_codes::MEMBERSHIP_REFUSED;

/// Joins the running cluster that `join` names (client addresses, or a discovery URL
/// naming the members' client ports): asks it (following not-leader hints) to add this
/// node, advertised at `me`, as a learner; waits until it caught up; then has it
/// promoted (unless `learner`); then has the member it `replaces` removed. The members'
/// addresses the cluster gives are seeded into `directory`, to answer them before this
/// node has the log.
pub(crate) async fn join(
    caller: &Caller,
    config: &Config,
    join: &str,
    me: &MemberAddress,
    directory: &Directory,
    token: Option<&str>,
) -> Result<(), ServerError> {
    let deadline = tokio::time::Instant::now() + config.catch_up_timeout;
    // The members' addresses, to answer the leader before this node has the log.
    let (at, members) = first_member(caller, &config.id, join, token, deadline).await?;
    let fail = |reason: String| ServerError::Join {
        address: at.clone(),
        reason,
    };
    let mut seeds = Members::new();
    for m in members["members"].as_array().into_iter().flatten() {
        if let (Some(id), Some(peer)) = (m["id"].as_str(), m["peer"].as_str()) {
            let addr = MemberAddress {
                peer: peer.to_string(),
                client: m["client"].as_str().map(str::to_string),
            };
            seeds.insert(id.to_string(), addr);
        }
    }
    directory.seed(seeds);
    let me = json!({
        "id": config.id,
        "peer": me.peer,
        "client": me.client,
    });
    info!(through = %at, "asking the cluster to add this node as a learner");
    retry_refusals(
        caller,
        &at,
        "admin_add_learner",
        &me,
        token,
        deadline,
        (&["already_member"], &["change_in_progress"]),
    )
    .await
    .map_err(|e| fail(e.to_string()))?;
    if config.learner {
        info!("added as a learner; staying one (learner = true)");
        return Ok(());
    }
    let id = json!({ "id": config.id });
    retry_refusals(
        caller,
        &at,
        "admin_promote",
        &id,
        token,
        deadline,
        (&["already_member"], &["change_in_progress", "not_caught_up"]),
    )
    .await
    .map_err(|e| fail(e.to_string()))?;
    info!("promoted to voter");
    if let Some(old) = &config.replaces {
        retry_refusals(
            caller,
            &at,
            "admin_remove",
            &json!({ "id": old }),
            token,
            deadline,
            (&["unknown_member"], &["change_in_progress"]),
        )
        .await
        .map_err(|e| fail(format!("promoted, but removing {old} failed: {e}")))?;
        info!(replaced = %old, "took the place of the old member");
    }
    Ok(())
}

/// The first member named by `join` that answers `admin_members` (through its
/// leader): its client address and the answer. Asks every candidate in turn; a
/// discovery URL is resolved and asked again until `deadline` (the records of a
/// just-created Service lag), a list of addresses once (a process supervisor
/// restarts the node).
async fn first_member(
    caller: &Caller,
    own_id: &str,
    join: &str,
    token: Option<&str>,
    deadline: tokio::time::Instant,
) -> Result<(String, Value), ServerError> {
    loop {
        let last_error = match join_candidates(join, own_id).await {
            Ok(candidates) if candidates.is_empty() => "it names no member other than this node".to_string(),
            Ok(candidates) => {
                let mut last = String::new();
                for at in candidates {
                    // A short wait per candidate: the next one may be the live one.
                    let until = deadline.min(tokio::time::Instant::now() + Duration::from_secs(5));
                    match caller.call_leader(&at, "admin_members", &json!({}), token, until).await {
                        Ok(members) => return Ok((at, members)),
                        Err(e) => {
                            debug!(member = %at, error = %e, "no answer to join through");
                            last = e.to_string();
                        }
                    }
                }
                last
            }
            Err(e) => e.to_string(),
        };
        if !is_discovery_url(join) || tokio::time::Instant::now() >= deadline {
            return Err(ServerError::Join {
                address: join.to_string(),
                reason: last_error,
            });
        }
        info!(through = %join, error = %last_error, "no member to join through yet; trying again");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Leaves the cluster through this node's own client port `own`: hands leadership over
/// first if this node leads, then has the leader remove it (`id`).
pub(crate) async fn leave(
    caller: &Caller,
    handle: &RaftHandle<ServerMachine>,
    own: &str,
    id: &str,
    token: Option<&str>,
) -> Result<(), ServerError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    if handle.view().leader.as_ref() == Some(handle.id()) {
        info!("leaving: handing leadership over first");
        caller.call(own, "admin_transfer_leader", &json!({}), token).await?;
    }
    let me = json!({ "id": id });
    retry_refusals(
        caller,
        own,
        "admin_remove",
        &me,
        token,
        deadline,
        (&["unknown_member"], &["change_in_progress"]),
    )
    .await?;
    info!("left the cluster");
    Ok(())
}

/// The client addresses `join` names, without this node's own (a headless Service's
/// SRV records list the joining pod too): `host:port[,host:port...]` as written, or
/// every node of the discovery URL.
async fn join_candidates(join: &str, own_id: &str) -> Result<Vec<String>, ServerError> {
    if !is_discovery_url(join) {
        return Ok(join
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect());
    }
    let all = discovery_from_url(join)?.get_all_node_addresses().await?;
    Ok(all
        .into_iter()
        .filter(|(id, _)| id.as_str() != own_id)
        .map(|(_, a)| a.to_string())
        .collect())
}

/// The running cluster as its leader sees it, reached through the first member `join`
/// names that knows a leader: that member's address and the leader's `admin_members`
/// answer (its membership is the newest, and only it reports how far it replicated to
/// each member). `None` if no member answers with a leader.
pub(crate) async fn running_cluster(
    caller: &Caller,
    join: &str,
    own_id: &str,
    token: Option<&str>,
) -> Option<(String, Value)> {
    async fn members_at(caller: &Caller, at: &str, token: Option<&str>) -> Option<Value> {
        let params = json!({});
        let answer = tokio::time::timeout(Duration::from_secs(3), caller.call(at, "admin_members", &params, token));
        answer.await.ok()?.ok()
    }
    let candidates = match join_candidates(join, own_id).await {
        Ok(c) => c,
        Err(e) => {
            debug!(error = %e, "no running cluster found through join");
            return None;
        }
    };
    for at in candidates {
        let Some(mut view) = members_at(caller, &at, token).await else {
            continue;
        };
        let Some(leader) = view["leader"].as_str().map(str::to_string) else {
            continue;
        };
        let leader_client = member_row(&view, &leader)
            .and_then(|r| r["client"].as_str())
            .map(str::to_string);
        if let Some(lc) = leader_client.filter(|lc| *lc != at) {
            if let Some(v) = members_at(caller, &lc, token).await {
                view = v;
            }
        }
        return Some((at, view));
    }
    None
}

/// `id`'s row in an `admin_members` answer.
fn member_row<'a>(members: &'a Value, id: &str) -> Option<&'a Value> {
    members["members"].as_array()?.iter().find(|m| m["id"] == id)
}

/// Whether the leader's `view` lists this (fresh) node; an error if it lists it with
/// replication progress: the node lost its data, and a member must never come back
/// with an empty disk under its old id (it forgot the votes and entries it
/// acknowledged). Best effort: a leader elected since the node died knows no progress
/// of it.
pub(crate) fn refuse_lost_data(at: &str, view: &Value, own_id: &str) -> Result<bool, ServerError> {
    let Some(row) = member_row(view, own_id) else {
        return Ok(false);
    };
    match row["match"].as_u64() {
        Some(n) if n > 0 => Err(ServerError::Join {
            address: at.to_string(),
            reason: format!(
                "this node ({own_id}) is a member of the running cluster, which had replicated its log to it up to index {n}, but its data directory is empty: its data was lost. Remove it first (easyraftctl member remove {own_id}); started again, it joins as a new member"
            ),
        }),
        _ => Ok(true),
    }
}

/// Calls `method` on the leader until it succeeds, is refused with a reason in `done`
/// (counts as success) or a reason not in `again` (`reasons` is `(done, again)`), or
/// `deadline` passes.
async fn retry_refusals(
    caller: &Caller,
    at: &str,
    method: &str,
    params: &Value,
    token: Option<&str>,
    deadline: tokio::time::Instant,
    (done, again): (&[&str], &[&str]),
) -> Result<(), ServerError> {
    loop {
        match caller.call_leader(at, method, params, token, deadline).await {
            Ok(_) => return Ok(()),
            Err(ServerError::Call {
                code: Some(MEMBERSHIP_REFUSED),
                data: Some(d),
                ..
            }) if d["reason"].as_str().is_some_and(|r| done.contains(&r)) => return Ok(()),
            Err(ServerError::Call {
                code: Some(MEMBERSHIP_REFUSED),
                data: Some(d),
                ..
            }) if d["reason"].as_str().is_some_and(|r| again.contains(&r))
                && tokio::time::Instant::now() < deadline =>
            {
                debug!(method, reason = ?d["reason"], "refused for now; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(e),
        }
    }
}
