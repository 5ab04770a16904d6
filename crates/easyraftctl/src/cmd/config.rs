//! `config set|get|del|rollback|history|watch`: the `config_*` methods of
//! examples/src/config/rpc.rs.
//!
//! `history` is `config_watch` from a version with no wait: every change kept by the
//! store (the last 100 000) after that version, oldest first, each with its version
//! (the log index of the change). When the changes asked for are no longer kept, the
//! server answers a resync (the current entries with their versions) instead.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

use super::{opt, parse};
use crate::client::{Call, Reply};
use crate::error::CtlError;
use crate::output::{Report, Table};
use crate::policy::CallKind;

/// `config_set {key, value}`: idempotent.
pub fn set(key: &str, value: &str) -> Call {
    Call::new(
        "config_set",
        CallKind::IdempotentWrite,
        json!({"key": key, "value": value}),
    )
}

/// `config_delete {key}`: idempotent.
pub fn del(key: &str) -> Call {
    Call::new("config_delete", CallKind::IdempotentWrite, json!({"key": key}))
}

/// `config_rollback {key | prefix, version}`: idempotent (rolling back twice to one
/// version leaves the same values).
pub fn rollback(key: &str, prefix: bool, to: u64) -> Call {
    let scope = if prefix { "prefix" } else { "key" };
    Call::new(
        "config_rollback",
        CallKind::IdempotentWrite,
        json!({ scope: key, "version": to }),
    )
}

/// Reports a rollback: the new version and the keys it changed.
pub fn rolled_back(reply: &Reply) -> Result<Report, CtlError> {
    #[derive(Deserialize)]
    struct R {
        version: u64,
        keys: Vec<String>,
    }
    let r: R = parse(reply, "config_rollback")?;
    let mut table = Table::new(&["KEY", "VERSION"]);
    for k in &r.keys {
        table.push([k.clone(), r.version.to_string()]);
    }
    let report = Report::ok(reply.result.clone(), table);
    Ok(match r.keys.is_empty() {
        true => report.note("nothing to roll back: every key already has its value of that version"),
        false => report,
    })
}

/// `config_get {key}`.
pub fn get(key: &str) -> Call {
    Call::new("config_get", CallKind::Read, json!({"key": key}))
}

/// `config_list {prefix}`.
pub fn list(prefix: &str) -> Call {
    Call::new("config_list", CallKind::Read, json!({"prefix": prefix}))
}

/// `config_watch {prefix, version, timeout_ms}`: the changes after `version`, waiting
/// up to `wait` for one (so the call gets that much more time).
pub fn watch(prefix: &str, version: u64, wait: Duration) -> Call {
    let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
    Call::new(
        "config_watch",
        CallKind::Read,
        json!({"prefix": prefix, "version": version, "timeout_ms": ms}),
    )
    .with_extra_time(wait)
}

/// A key's value and version, in a listing or a resync.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Entry {
    /// The key.
    pub key: String,
    /// The value.
    pub value: String,
    /// The log index of its last change.
    pub version: u64,
}

/// One change, in a watch or the history.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Change {
    /// The log index of the change.
    pub version: u64,
    /// The key.
    pub key: String,
    /// The new value (`None`: deleted).
    pub value: Option<String>,
}

/// A `config_watch` answer.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Watched {
    /// The changes after the version asked (empty on a resync or a timeout).
    #[serde(default)]
    pub changes: Vec<Change>,
    /// The version asked is older than the kept history: `entries` is the listing.
    #[serde(default)]
    pub resync: bool,
    /// The listing, on a resync.
    #[serde(default)]
    pub entries: Vec<Entry>,
    /// The store's version when answered: where the next watch starts.
    pub version: u64,
}

/// A `config_list` answer.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Listed {
    /// The entries.
    pub entries: Vec<Entry>,
    /// The store's version.
    pub version: u64,
}

/// Reports a set or a delete.
pub fn versioned(key: &str, reply: &Reply, method: &str) -> Result<Report, CtlError> {
    #[derive(Deserialize)]
    struct V {
        version: u64,
    }
    let v: V = parse(reply, method)?;
    let mut json = reply.result.clone();
    json["key"] = json!(key);
    Ok(Report::ok(
        json,
        Table::new(&["KEY", "VERSION"]).row([key.to_string(), v.version.to_string()]),
    ))
}

/// Reports a get.
pub fn got(key: &str, reply: &Reply) -> Result<Report, CtlError> {
    #[derive(Deserialize)]
    struct G {
        value: Option<String>,
        version: Option<u64>,
    }
    let g: G = parse(reply, "config_get")?;
    let mut json = reply.result.clone();
    json["key"] = json!(key);
    let table = Table::new(&["KEY", "VALUE", "VERSION"]).row([
        key.to_string(),
        opt(&g.value),
        g.version.map_or("-".into(), |v| v.to_string()),
    ]);
    Ok(Report::ok(json, table))
}

/// Reports a listing.
pub fn listed(reply: &Reply) -> Result<Report, CtlError> {
    let l: Listed = parse(reply, "config_list")?;
    Ok(Report::ok(reply.result.clone(), entries_table(&l.entries)))
}

fn entries_table(entries: &[Entry]) -> Table {
    let mut t = Table::new(&["KEY", "VALUE", "VERSION"]);
    for e in entries {
        t.push([e.key.clone(), e.value.clone(), e.version.to_string()]);
    }
    t
}

/// The table of changes: VERSION, KEY, VALUE (`(deleted)` for a delete).
pub fn changes_table(changes: &[Change]) -> Table {
    let mut t = Table::new(&["VERSION", "KEY", "VALUE"]);
    for c in changes {
        t.push([
            c.version.to_string(),
            c.key.clone(),
            c.value.clone().unwrap_or_else(|| "(deleted)".into()),
        ]);
    }
    t
}

/// Reports the history (a resync, when the history asked for is gone, as the listing).
pub fn history(reply: &Reply) -> Result<Report, CtlError> {
    let w: Watched = parse(reply, "config_watch")?;
    if w.resync {
        return Ok(Report::ok(reply.result.clone(), entries_table(&w.entries))
            .note("the changes asked for are older than the kept history: the current entries, with their versions"));
    }
    Ok(Report::ok(reply.result.clone(), changes_table(&w.changes)))
}

/// The events of one watch answer: one per change (or one resync event), and the
/// version to watch from next.
pub fn watch_events(w: &Watched) -> (Vec<Report>, u64) {
    let mut out = Vec::new();
    if w.resync {
        let json = json!({"resync": true, "entries": w.entries.iter().map(|e| json!({"key": e.key, "value": e.value, "version": e.version})).collect::<Vec<Value>>(), "version": w.version});
        let mut t = Table::new(&["VERSION", "KEY", "VALUE"]);
        for e in &w.entries {
            t.push([e.version.to_string(), e.key.clone(), e.value.clone()]);
        }
        let mut r =
            Report::ok(json, t).note("resync: the watch fell behind the kept history; the current entries follow");
        r.event = true;
        out.push(r);
    }
    for c in &w.changes {
        let json = json!({"version": c.version, "key": c.key, "value": c.value, "deleted": c.value.is_none()});
        let mut r = Report::ok(json, changes_table(std::slice::from_ref(c)));
        r.event = true;
        out.push(r);
    }
    let next = w.changes.iter().map(|c| c.version).max().unwrap_or(0).max(w.version);
    (out, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_carry_the_params_of_examples_config() {
        let w = watch("app/", 7, Duration::from_secs(2));
        assert_eq!(w.params, json!({"prefix": "app/", "version": 7, "timeout_ms": 2000}));
        assert_eq!(w.extra_time, Duration::from_secs(2));
        assert_eq!(set("a", "1").kind, CallKind::IdempotentWrite);
        assert_eq!(list("p").params, json!({"prefix": "p"}));
        assert_eq!(get("k").method, "config_get");
    }

    #[test]
    fn a_watch_answer_becomes_one_event_per_change_and_the_next_version() {
        let w: Watched = serde_json::from_value(json!({
            "changes": [
                {"version": 5, "key": "app/a", "value": "1", "deleted": false},
                {"version": 6, "key": "app/a", "value": null, "deleted": true}
            ],
            "version": 9
        }))
        .unwrap();
        let (events, next) = watch_events(&w);
        assert_eq!((events.len(), next), (2, 9));
        assert_eq!(events[1].table.rows[0][2], "(deleted)");
        assert_eq!(events[1].json["deleted"], true);
        let r: Watched = serde_json::from_value(json!({
            "resync": true, "entries": [{"key": "k", "value": "v", "version": 3}], "version": 4
        }))
        .unwrap();
        let (events, next) = watch_events(&r);
        assert_eq!(
            (events.len(), next, events[0].json["resync"].clone()),
            (1, 4, json!(true))
        );
        let empty: Watched = serde_json::from_value(json!({"changes": [], "version": 4})).unwrap();
        assert_eq!(watch_events(&empty), (vec![], 4));
    }
}
