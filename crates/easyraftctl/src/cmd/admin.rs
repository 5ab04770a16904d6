//! `member list|add|promote|remove|replace` and `leader transfer`: the admin methods
//! of docs/server-api.md (header `Authorization: Bearer <admin token>`). Membership
//! calls go to the leader: a follower's -32020 hint is followed like any write's.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

use super::parse;
use crate::client::{Call, Reply};
use crate::error::CtlError;
use crate::output::{show, Report, Table};
use crate::policy::CallKind;

/// How long `admin_replace` may take on top of the call timeout: it waits until the
/// new member caught up.
pub const REPLACE_TIME: Duration = Duration::from_secs(120);

/// `admin_snapshot {}`: a snapshot taken now on the node (`{index, term}`); taking
/// another is harmless, so it is retried like an idempotent write.
pub fn take_snapshot() -> Call {
    Call::new("admin_snapshot", CallKind::IdempotentWrite, json!({})).admin()
}

/// Reports `admin_snapshot`'s `{index, term}`.
pub fn snapshot_taken(reply: &Reply) -> Result<Report, CtlError> {
    #[derive(Deserialize)]
    struct Taken {
        index: u64,
        term: u64,
    }
    let t: Taken = parse(reply, "admin_snapshot")?;
    let table =
        Table::new(&["INDEX", "TERM", "BY"]).row([t.index.to_string(), t.term.to_string(), reply.endpoint.to_string()]);
    Ok(Report::ok(reply.result.clone(), table))
}

/// `admin_members {}`.
pub fn members() -> Call {
    Call::new("admin_members", CallKind::Read, json!({})).admin()
}

/// `admin_add_learner {id, peer, client?}`.
pub fn add_learner(id: &str, peer: &str, client: Option<&str>) -> Call {
    let mut p = json!({"id": id, "peer": peer});
    if let Some(c) = client {
        p["client"] = json!(c);
    }
    Call::new("admin_add_learner", CallKind::Write, p).admin()
}

/// `admin_promote {id}`.
pub fn promote(id: &str) -> Call {
    Call::new("admin_promote", CallKind::Write, json!({"id": id})).admin()
}

/// `admin_remove {id}`.
pub fn remove(id: &str) -> Call {
    Call::new("admin_remove", CallKind::Write, json!({"id": id})).admin()
}

/// `admin_replace {old, id, peer, client?}`.
pub fn replace(old: &str, id: &str, peer: &str, client: Option<&str>) -> Call {
    let mut p = json!({"old": old, "id": id, "peer": peer});
    if let Some(c) = client {
        p["client"] = json!(c);
    }
    Call::new("admin_replace", CallKind::Write, p)
        .admin()
        .with_extra_time(REPLACE_TIME)
}

/// `admin_transfer_leader {to?}`.
pub fn transfer_leader(to: Option<&str>) -> Call {
    let p = match to {
        Some(t) => json!({"to": t}),
        None => json!({}),
    };
    Call::new("admin_transfer_leader", CallKind::Write, p).admin()
}

/// One member in `admin_members`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Member {
    /// The node id.
    pub id: String,
    /// `voter` or `learner`.
    pub role: String,
    /// The peer (Raft) address.
    #[serde(default)]
    pub peer: Option<String>,
    /// The client address.
    #[serde(default)]
    pub client: Option<String>,
    /// The match index as the leader sees it (`null` elsewhere).
    #[serde(default, rename = "match")]
    pub match_index: Option<u64>,
    /// How far behind the leader's log (`null` elsewhere).
    #[serde(default)]
    pub lag: Option<u64>,
}

/// The `admin_members` answer.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Members {
    /// The leader's id, if known.
    #[serde(default)]
    pub leader: Option<String>,
    /// The term.
    #[serde(default)]
    pub term: Option<u64>,
    /// The members.
    pub members: Vec<Member>,
}

/// Reads an `admin_members` answer.
pub fn parse_members(reply: &Reply) -> Result<Members, CtlError> {
    parse(reply, "admin_members")
}

/// Where to ask again for the leader's view: `match` and `lag` are `null` off the
/// leader, so when every member's `match` is unknown and the leader's client address
/// is listed (and is not who answered), the leader's client endpoint.
pub fn leader_view(m: &Members, answered: &crate::endpoint::Endpoint) -> Option<crate::endpoint::Endpoint> {
    if m.members.iter().any(|x| x.match_index.is_some()) {
        return None;
    }
    let leader = m.members.iter().find(|x| Some(&x.id) == m.leader.as_ref())?;
    let ep = crate::endpoint::Endpoint::parse_like(leader.client.as_deref()?, answered).ok()?;
    (ep != *answered).then_some(ep)
}

/// Reports the members: ID, ROLE, LEADER (`*`), PEER, CLIENT, MATCH, LAG.
pub fn members_report(reply: &Reply) -> Result<Report, CtlError> {
    let m = parse_members(reply)?;
    let mut t = Table::new(&["ID", "ROLE", "LEADER", "PEER", "CLIENT", "MATCH", "LAG"]);
    let num = |n: Option<u64>| n.map_or("-".to_string(), |n| n.to_string());
    for x in &m.members {
        let leader = if m.leader.as_deref() == Some(x.id.as_str()) {
            "*"
        } else {
            "-"
        };
        t.push([
            x.id.clone(),
            x.role.clone(),
            leader.to_string(),
            super::opt(&x.peer),
            super::opt(&x.client),
            num(x.match_index),
            num(x.lag),
        ]);
    }
    Ok(Report::ok(reply.result.clone(), t))
}

/// Reports a membership change (`{index}` or `{}`) or a transfer (`{leader}`).
pub fn changed(what: &str, reply: &Reply) -> Result<Report, CtlError> {
    let obj = reply.result.as_object().ok_or_else(|| CtlError::BadAnswer {
        endpoint: reply.endpoint.to_string(),
        what: what.to_string(),
        reason: format!("expected an object, got {}", reply.result),
    })?;
    let mut t = Table::new(&["DONE", "INDEX", "LEADER", "BY"]);
    t.push([
        what.to_string(),
        show(obj.get("index")),
        show(obj.get("leader")),
        reply.endpoint.to_string(),
    ]);
    let mut json: Value = reply.result.clone();
    json["done"] = json!(what);
    Ok(Report::ok(json, t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::Endpoint;

    fn reply(result: Value) -> Reply {
        Reply {
            endpoint: Endpoint::parse("127.0.0.1:1").unwrap(),
            result,
        }
    }

    #[test]
    fn admin_calls_carry_the_contract_params_and_the_token() {
        let cases = [
            (members(), "admin_members", json!({})),
            (
                add_learner("n4", "10.0.0.4:7001", Some("10.0.0.4:7000")),
                "admin_add_learner",
                json!({"id": "n4", "peer": "10.0.0.4:7001", "client": "10.0.0.4:7000"}),
            ),
            (
                add_learner("n4", "10.0.0.4:7001", None),
                "admin_add_learner",
                json!({"id": "n4", "peer": "10.0.0.4:7001"}),
            ),
            (promote("n4"), "admin_promote", json!({"id": "n4"})),
            (remove("n1"), "admin_remove", json!({"id": "n1"})),
            (
                replace("n1", "n5", "h:7001", None),
                "admin_replace",
                json!({"old": "n1", "id": "n5", "peer": "h:7001"}),
            ),
            (
                transfer_leader(Some("n2")),
                "admin_transfer_leader",
                json!({"to": "n2"}),
            ),
            (transfer_leader(None), "admin_transfer_leader", json!({})),
        ];
        for (call, method, params) in cases {
            assert_eq!((call.method, &call.params, call.admin), (method, &params, true));
            let expected = if method == "admin_members" {
                CallKind::Read
            } else {
                CallKind::Write
            };
            assert_eq!(call.kind, expected, "{method}");
        }
        assert_eq!(replace("a", "b", "c", None).extra_time, REPLACE_TIME);
        let take = take_snapshot();
        assert_eq!(
            (take.method, &take.params, take.admin),
            ("admin_snapshot", &json!({}), true)
        );
        assert_eq!(take.kind, CallKind::IdempotentWrite);
        let taken = snapshot_taken(&reply(json!({"index": 40, "term": 2}))).unwrap();
        assert_eq!(taken.table.rows[0][..2], ["40", "2"]);
        assert!(snapshot_taken(&reply(json!({"index": "x"}))).is_err());
    }

    #[test]
    fn members_parse_as_the_contract_says_with_match_and_lag_null_off_the_leader() {
        let r = reply(json!({
            "leader": "n1", "term": 3,
            "members": [
                {"id": "n1", "role": "voter", "peer": "h1:7001", "client": "h1:7000", "match": 10, "lag": 0},
                {"id": "n4", "role": "learner", "peer": "h4:7001", "client": null, "match": null, "lag": null}
            ]
        }));
        let m = parse_members(&r).unwrap();
        assert_eq!(m.members[0].match_index, Some(10));
        assert_eq!(m.members[1].client, None);
        let report = members_report(&r).unwrap();
        assert_eq!(report.table.rows[0][..3], ["n1", "voter", "*"]);
        assert_eq!(report.table.rows[1][5..], ["-", "-"]);
        assert!(parse_members(&reply(json!({"members": "nope"}))).is_err());
        // The leader's view has match/lag: no need to ask again.
        let asked = Endpoint::parse("127.0.0.1:1").unwrap();
        assert_eq!(leader_view(&m, &asked), None);
        let off_leader: Members = serde_json::from_value(json!({"leader": "n1", "members": [
            {"id": "n1", "role": "voter", "client": "h1:7000"}, {"id": "n2", "role": "voter", "client": "127.0.0.1:1"}
        ]}))
        .unwrap();
        assert_eq!(
            leader_view(&off_leader, &asked).map(|e| e.to_string()),
            Some("h1:7000".into())
        );
        // The leader itself answered, or no leader is known: nothing better to ask.
        let h1 = Endpoint::parse("h1:7000").unwrap();
        assert_eq!(leader_view(&off_leader, &h1), None);
        let leaderless = Members {
            leader: None,
            ..off_leader
        };
        assert_eq!(leader_view(&leaderless, &asked), None);
        let c = changed("promote", &reply(json!({"index": 12}))).unwrap();
        assert_eq!(c.table.rows[0][1], "12");
        assert_eq!(c.json["index"], 12);
        assert!(changed("replace", &reply(json!({}))).is_ok());
        assert!(changed("replace", &reply(json!(3))).is_err());
    }
}
