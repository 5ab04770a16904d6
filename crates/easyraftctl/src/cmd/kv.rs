//! `kv put|get|del|cas|scan`: the `kv_*` methods of examples/src/kv.rs.

use serde::Deserialize;
use serde_json::json;

use super::{opt, parse};
use crate::client::{Call, Reply};
use crate::error::CtlError;
use crate::output::{Report, Table};
use crate::policy::CallKind;

/// `kv_put {key, value}`: idempotent (the same state when applied twice).
pub fn put(key: &str, value: &str) -> Call {
    Call::new("kv_put", CallKind::IdempotentWrite, json!({"key": key, "value": value}))
}

/// `kv_get {key, stale}`: linearizable unless `stale` (then any node answers at once).
pub fn get(key: &str, stale: bool) -> Call {
    Call::new("kv_get", CallKind::Read, json!({"key": key, "stale": stale}))
}

/// `kv_delete {key}`: idempotent.
pub fn del(key: &str) -> Call {
    Call::new("kv_delete", CallKind::IdempotentWrite, json!({"key": key}))
}

/// `kv_cas {key, expected, new}` (`None`: absent / delete): not idempotent.
pub fn cas(key: &str, expected: Option<&str>, new: Option<&str>) -> Call {
    Call::new(
        "kv_cas",
        CallKind::Write,
        json!({"key": key, "expected": expected, "new": new}),
    )
}

/// `kv_scan {prefix, limit}`.
pub fn scan(prefix: &str, limit: Option<u64>) -> Call {
    let mut params = json!({"prefix": prefix});
    if let Some(l) = limit {
        params["limit"] = json!(l);
    }
    Call::new("kv_scan", CallKind::Read, params)
}

/// The result of a write: `{ok, previous, index}`.
#[derive(Debug, Deserialize)]
pub struct Written {
    /// Whether it happened (false: a CAS whose expectation failed).
    pub ok: bool,
    /// The value before.
    pub previous: Option<String>,
    /// The log index it was applied at.
    pub index: u64,
}

#[derive(Deserialize)]
struct Got {
    value: Option<String>,
}

#[derive(Deserialize)]
struct Pair {
    key: String,
    value: String,
}

#[derive(Deserialize)]
struct Scanned {
    pairs: Vec<Pair>,
}

/// Reports a put or a delete.
pub fn written(key: &str, reply: &Reply, method: &str) -> Result<Report, CtlError> {
    let w: Written = parse(reply, method)?;
    let table = Table::new(&["KEY", "PREVIOUS", "INDEX"]).row([key.to_string(), opt(&w.previous), w.index.to_string()]);
    Ok(Report::ok(with_key(key, reply), table))
}

/// Reports a CAS (exit 5 when it did not swap).
pub fn swapped(key: &str, reply: &Reply) -> Result<Report, CtlError> {
    let w: Written = parse(reply, "kv_cas")?;
    let table = Table::new(&["KEY", "SWAPPED", "PREVIOUS", "INDEX"]).row([
        key.to_string(),
        w.ok.to_string(),
        opt(&w.previous),
        w.index.to_string(),
    ]);
    let r = Report::ok(with_key(key, reply), table).met_if(w.ok);
    Ok(if w.ok {
        r
    } else {
        r.note(format!("not swapped: {key} is {}", opt(&w.previous)))
    })
}

/// Reports a get (an absent key is `-` in the table, `null` in JSON).
pub fn got(key: &str, reply: &Reply) -> Result<Report, CtlError> {
    let g: Got = parse(reply, "kv_get")?;
    let table = Table::new(&["KEY", "VALUE"]).row([key.to_string(), opt(&g.value)]);
    Ok(Report::ok(with_key(key, reply), table))
}

/// Reports a scan.
pub fn scanned(reply: &Reply) -> Result<Report, CtlError> {
    let s: Scanned = parse(reply, "kv_scan")?;
    let mut table = Table::new(&["KEY", "VALUE"]);
    for p in s.pairs {
        table.push([p.key, p.value]);
    }
    Ok(Report::ok(reply.result.clone(), table))
}

fn with_key(key: &str, reply: &Reply) -> serde_json::Value {
    let mut v = reply.result.clone();
    if let Some(o) = v.as_object_mut() {
        o.insert("key".into(), json!(key));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::Endpoint;
    use crate::output::Verdict;

    fn reply(result: serde_json::Value) -> Reply {
        Reply {
            endpoint: Endpoint::parse("127.0.0.1:1").unwrap(),
            result,
        }
    }

    #[test]
    fn calls_carry_the_params_of_examples_kv() {
        assert_eq!(put("a", "1").params, json!({"key": "a", "value": "1"}));
        assert_eq!(
            cas("a", None, Some("2")).params,
            json!({"key": "a", "expected": null, "new": "2"})
        );
        assert_eq!(cas("a", None, None).kind, CallKind::Write);
        assert_eq!(get("a", true).params, json!({"key": "a", "stale": true}));
        assert_eq!(scan("p", None).params, json!({"prefix": "p"}));
        assert_eq!(scan("p", Some(3)).params, json!({"prefix": "p", "limit": 3}));
        assert_eq!(del("a").method, "kv_delete");
    }

    #[test]
    fn a_failed_cas_is_not_met_and_a_bad_answer_names_the_endpoint() {
        let r = swapped("a", &reply(json!({"ok": false, "previous": "x", "index": 7}))).unwrap();
        assert_eq!(r.verdict, Verdict::NotMet);
        assert_eq!(r.json["key"], "a");
        let e = got("a", &reply(json!({"nope": 1})));
        // `value` absent reads as None (Option), so this is still a valid get.
        assert!(e.is_ok());
        let bad = written("a", &reply(json!({"ok": "yes"})), "kv_put").unwrap_err();
        assert!(bad.to_string().contains("127.0.0.1:1"), "{bad}");
        let s = scanned(&reply(json!({"pairs": [{"key": "a", "value": "1"}]}))).unwrap();
        assert_eq!(s.table.rows, vec![vec!["a".to_string(), "1".to_string()]]);
    }
}
