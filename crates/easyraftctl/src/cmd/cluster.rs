//! `cluster status|health`: one table for all nodes. Fans out `GET /status` and
//! `GET /health` to every endpoint given and to every member `admin_members` reports
//! (when the admin token lets it), at once.

use std::collections::BTreeMap;

use hyper::body::Bytes;
use hyper::Method;
use serde_json::{json, Value};

use super::admin::{self, Members};
use crate::client::{snippet, Client};
use crate::endpoint::Endpoint;
use crate::error::CtlError;
use crate::http::{Answer, HttpError};
use crate::output::{show, Report, Table};

/// What one node said.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Where it was asked.
    pub endpoint: String,
    /// Its id (from `/status`, or from the member list by client address).
    pub id: Option<String>,
    /// `voter` or `learner`, from the member list.
    pub member: Option<String>,
    /// Its `/status` (`None`: not reached).
    pub status: Option<Value>,
    /// Whether `/health` answered 200 (`None`: not reached).
    pub healthy: Option<bool>,
    /// What went wrong reaching it, or why it is not healthy.
    pub error: Option<String>,
    /// Its lag as the leader sees it.
    pub lag: Option<u64>,
}

impl Node {
    /// Whether it answered at all.
    pub fn reached(&self) -> bool {
        self.status.is_some() || self.healthy.is_some()
    }
}

/// Builds one node's row from its two answers and the member list.
pub fn node(
    ep: &Endpoint,
    status: Result<Answer, HttpError>,
    health: Result<Answer, HttpError>,
    members: Option<&Members>,
) -> Node {
    let mut errors = Vec::new();
    let status = match status {
        Ok(a) => match serde_json::from_slice::<Value>(&a.body) {
            Ok(v) if v.is_object() => Some(v),
            _ => {
                errors.push(format!("/status: HTTP {}: {}", a.status, snippet(&a.body)));
                None
            }
        },
        Err(e) => {
            errors.push(format!("/status: {e}"));
            None
        }
    };
    let healthy = match health {
        Ok(a) if a.status == 200 => Some(true),
        Ok(a) => {
            errors.push(format!("/health: HTTP {}: {}", a.status, snippet(&a.body)));
            Some(false)
        }
        Err(e) => {
            errors.push(format!("/health: {e}"));
            None
        }
    };
    let id = status
        .as_ref()
        .and_then(|s| s.get("id"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let authority = ep.authority();
    let member = members.and_then(|m| {
        m.members.iter().find(|x| {
            Some(&x.id) == id.as_ref()
                || x.client
                    .as_deref()
                    .and_then(|c| Endpoint::parse(c).ok())
                    .map(|c| c.authority())
                    == Some(authority.clone())
        })
    });
    // An errors list that repeats the same connection failure twice says it once.
    errors.dedup_by(|a, b| a.split_once(": ").map(|x| x.1) == b.split_once(": ").map(|x| x.1));
    Node {
        endpoint: ep.to_string(),
        id: id.or_else(|| member.map(|m| m.id.clone())),
        member: member.map(|m| m.role.clone()),
        lag: member.and_then(|m| m.lag),
        status,
        healthy,
        error: if errors.is_empty() {
            None
        } else {
            Some(errors.join("; "))
        },
    }
}

/// The endpoints to ask: those given, then members' client addresses not among them.
pub fn targets(given: &[Endpoint], members: Option<&Members>) -> Vec<Endpoint> {
    let mut out = given.to_vec();
    let parse = |c: &str| match given.first() {
        Some(like) => Endpoint::parse_like(c, like),
        None => Endpoint::parse(c),
    };
    for m in members.map(|m| m.members.as_slice()).unwrap_or(&[]) {
        if let Some(e) = m.client.as_deref().and_then(|c| parse(c).ok()) {
            if !out.contains(&e) {
                out.push(e);
            }
        }
    }
    out
}

/// The table: ENDPOINT ID MEMBER ROLE TERM LEADER COMMIT APPLIED LAG HEALTH ERROR.
pub fn table(nodes: &[Node]) -> Table {
    let mut t = Table::new(&[
        "ENDPOINT", "ID", "MEMBER", "ROLE", "TERM", "LEADER", "COMMIT", "APPLIED", "LAG", "HEALTH", "ERROR",
    ]);
    for n in nodes {
        let f = |k: &str| show(n.status.as_ref().and_then(|s| s.get(k)));
        t.push([
            n.endpoint.clone(),
            n.id.clone().unwrap_or_else(|| "-".into()),
            n.member.clone().unwrap_or_else(|| "-".into()),
            f("role"),
            f("term"),
            f("leader"),
            f("commit"),
            f("applied"),
            n.lag.map_or("-".into(), |l| l.to_string()),
            match n.healthy {
                Some(true) => "healthy".into(),
                Some(false) => "UNHEALTHY".into(),
                None => "unreachable".into(),
            },
            n.error.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    t
}

fn node_json(n: &Node) -> Value {
    json!({
        "endpoint": n.endpoint, "id": n.id, "member": n.member, "lag": n.lag,
        "healthy": n.healthy, "status": n.status, "error": n.error,
    })
}

/// Asks every node; returns them and a note when the member list was not available.
pub async fn gather(client: &Client) -> (Vec<Node>, Option<Members>, Option<String>) {
    let (members, note) = match client.call(&admin::members()).await {
        Ok(reply) => match admin::parse_members(&reply) {
            Ok(m) => (Some(m), None),
            Err(e) => (None, Some(e.to_string())),
        },
        Err(e) => (None, Some(e.to_string())),
    };
    let eps = targets(&client.settings.endpoints, members.as_ref());
    let mut set = tokio::task::JoinSet::new();
    for (i, ep) in eps.iter().cloned().enumerate() {
        let http = client.http.clone();
        let timeout = client.settings.timeout;
        set.spawn(async move {
            let get = |path: &'static str| http.exchange(&ep, Method::GET, path, None, Bytes::new(), timeout);
            let (s, h) = tokio::join!(get("/status"), get("/health"));
            (i, s, h)
        });
    }
    let mut answers = BTreeMap::new();
    while let Some(done) = set.join_next().await {
        if let Ok((i, s, h)) = done {
            answers.insert(i, (s, h));
        }
    }
    let nodes = eps
        .iter()
        .enumerate()
        .map(|(i, ep)| {
            let (s, h) = answers.remove(&i).unwrap_or_else(|| {
                let lost = || Err(HttpError::Exchange("the task was lost".into()));
                (lost(), lost())
            });
            node(ep, s, h, members.as_ref())
        })
        .collect();
    (
        nodes,
        members,
        note.map(|n| format!("member list not available ({n}): showing the endpoints given")),
    )
}

/// `cluster status` (`health: false`) or `cluster health`: exit 3 if no node answered;
/// for `health`, exit 5 unless every node is healthy.
pub async fn report(client: &Client, health: bool) -> Result<Report, CtlError> {
    let (nodes, members, note) = gather(client).await;
    if !nodes.iter().any(Node::reached) {
        return Err(CtlError::Unreachable {
            attempts: nodes
                .iter()
                .map(|n| (n.endpoint.clone(), n.error.clone().unwrap_or_default()))
                .collect(),
        });
    }
    let all_healthy = nodes.iter().all(|n| n.healthy == Some(true));
    let json = json!({
        "nodes": nodes.iter().map(node_json).collect::<Vec<_>>(),
        "leader": members.as_ref().and_then(|m| m.leader.clone()),
        "term": members.as_ref().and_then(|m| m.term),
        "healthy": all_healthy,
    });
    let mut r = Report::ok(json, table(&nodes));
    if let Some(n) = note {
        r = r.note(n);
    }
    if health {
        r = r.met_if(all_healthy);
        if !all_healthy {
            r = r.note("not every node is healthy");
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Result<Answer, HttpError> {
        Ok(Answer {
            status,
            location: None,
            body: Bytes::from(body.to_string()),
        })
    }

    fn members() -> Members {
        serde_json::from_value(json!({"leader": "n1", "term": 2, "members": [
            {"id": "n1", "role": "voter", "peer": "h1:7001", "client": "127.0.0.1:7000", "match": 9, "lag": 0},
            {"id": "n2", "role": "learner", "peer": "h2:7001", "client": "127.0.0.2:7000", "match": 5, "lag": 4}
        ]}))
        .unwrap()
    }

    #[test]
    fn targets_add_the_members_not_given() {
        let given = vec![Endpoint::parse("127.0.0.1:7000").unwrap()];
        let t = targets(&given, Some(&members()));
        assert_eq!(
            t.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
            ["127.0.0.1:7000", "127.0.0.2:7000"]
        );
        assert_eq!(targets(&given, None), given);
    }

    #[test]
    fn rows_join_status_health_and_membership() {
        let m = members();
        let ep = Endpoint::parse("127.0.0.2:7000").unwrap();
        let status = r#"{"role":"Follower","term":2,"leader":"n1","commit":9,"applied":9,"running":true}"#;
        let n = node(&ep, answer(200, status), answer(503, r#"{"ok":false}"#), Some(&m));
        assert_eq!(
            (n.id.as_deref(), n.member.as_deref(), n.lag),
            (Some("n2"), Some("learner"), Some(4))
        );
        assert_eq!(n.healthy, Some(false));
        let t = table(&[n]);
        assert_eq!(t.rows[0][3..10], ["Follower", "2", "n1", "9", "9", "4", "UNHEALTHY"]);
        let dead = node(
            &ep,
            Err(HttpError::Connect("refused".into())),
            Err(HttpError::Connect("refused".into())),
            None,
        );
        assert!(!dead.reached());
        assert_eq!(dead.error.as_deref(), Some("/status: cannot connect: refused"));
        assert_eq!(table(&[dead]).rows[0][9], "unreachable");
    }
}
