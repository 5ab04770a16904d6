//! What the admin API reports of the cluster: the members with their addresses and
//! replication progress (`admin_members`), and every member's own status, asked over
//! its client port (`admin_status`).

use easyraft::{NodeId, Role, Status};
use serde_json::{json, Value};

use crate::client::Caller;
use crate::directory::Directory;

/// The `admin_members` answer from this node's status `s`: progress (`match`, `lag`)
/// only when it leads.
pub(super) fn members(s: &Status, directory: &Directory) -> Value {
    let leading = s.role == Role::Leader;
    let row = |id: &NodeId, role: &str| {
        let addr = directory.get(id.as_str());
        let matched = if leading {
            if *id == s.id {
                Some(s.last_index)
            } else {
                s.progress.get(id).map(|p| p.match_index)
            }
        } else {
            None
        };
        json!({
            "id": id.as_str(),
            "role": role,
            "peer": addr.as_ref().map(|a| a.peer.clone()),
            "client": addr.and_then(|a| a.client),
            "match": matched,
            "lag": matched.map(|m| s.last_index.saturating_sub(m)),
        })
    };
    let mut members: Vec<Value> = Vec::new();
    for v in s.membership.voters.union(&s.membership.voters_outgoing) {
        members.push(row(v, "voter"));
    }
    for l in &s.membership.learners {
        members.push(row(l, "learner"));
    }
    json!({ "leader": s.leader.as_ref().map(|l| l.as_str()), "term": s.term, "members": members })
}

/// The `admin_status` answer: each member of `s`'s membership's `/status`, or why it
/// could not be asked.
pub(super) async fn status_of_members(s: &Status, directory: &Directory, caller: &Caller) -> Value {
    let mut nodes = Vec::new();
    for id in s
        .membership
        .voters
        .iter()
        .chain(&s.membership.voters_outgoing)
        .chain(&s.membership.learners)
    {
        let mut row = json!({ "id": id.as_str(), "reachable": false });
        match directory.client(id.as_str()) {
            None => row["error"] = json!("no client address known"),
            Some(addr) => match caller.get_json(&addr, "/status").await {
                Ok((_, body)) => {
                    row["reachable"] = json!(true);
                    for k in [
                        "role",
                        "term",
                        "leader",
                        "commit",
                        "applied",
                        "first_index",
                        "last_index",
                        "running",
                    ] {
                        row[k] = body[k].clone();
                    }
                }
                Err(e) => row["error"] = json!(e),
            },
        }
        if !nodes.iter().any(|n: &Value| n["id"] == row["id"]) {
            nodes.push(row);
        }
    }
    json!({ "nodes": nodes })
}
