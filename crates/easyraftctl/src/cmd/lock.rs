//! `lock acquire|renew|release|holder`: the `lock_*` methods of examples/src/lock.rs.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::{opt, parse};
use crate::client::{Call, Reply};
use crate::error::CtlError;
use crate::output::{Report, Table};
use crate::policy::CallKind;

/// `lock_acquire {name, owner, ttl_ms, wait_ms}`: not idempotent. The server may
/// wait up to `wait` for the lock, so the call gets that much more time.
pub fn acquire(name: &str, owner: &str, ttl: Duration, wait: Duration) -> Call {
    let params = json!({"name": name, "owner": owner, "ttl_ms": ms(ttl), "wait_ms": ms(wait)});
    Call::new("lock_acquire", CallKind::Write, params).with_extra_time(wait)
}

/// `lock_renew {name, owner, token, ttl_ms}`: idempotent (the lease is extended from
/// the leader's now, whichever application counts).
pub fn renew(name: &str, owner: &str, token: u64, ttl: Duration) -> Call {
    let params = json!({"name": name, "owner": owner, "token": token, "ttl_ms": ms(ttl)});
    Call::new("lock_renew", CallKind::IdempotentWrite, params)
}

/// `lock_release {name, owner, token}`: not idempotent (a second one says "not holder").
pub fn release(name: &str, owner: &str, token: u64) -> Call {
    Call::new(
        "lock_release",
        CallKind::Write,
        json!({"name": name, "owner": owner, "token": token}),
    )
}

/// `lock_holder {name}`.
pub fn holder(name: &str) -> Call {
    Call::new("lock_holder", CallKind::Read, json!({"name": name}))
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Every shape of a lock answer: granted `{granted, owner, token, expires_at}`, held
/// `{granted: false, holder, expires_at}`, `{released: true}`, `{not_holder: true}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LockAnswer {
    /// Granted or renewed.
    pub granted: bool,
    /// Released.
    pub released: bool,
    /// The caller does not hold the lock.
    pub not_holder: bool,
    /// The owner of a grant.
    pub owner: Option<String>,
    /// Who holds it (when not granted).
    pub holder: Option<String>,
    /// The fencing token of a grant.
    pub token: Option<u64>,
    /// When the lease ends (log time, ms).
    pub expires_at: Option<u64>,
}

/// Reports an acquire or a renew (exit 5 unless granted).
pub fn granted(name: &str, reply: &Reply, method: &str) -> Result<Report, CtlError> {
    let a: LockAnswer = parse(reply, method)?;
    let table = Table::new(&["NAME", "GRANTED", "OWNER", "TOKEN", "EXPIRES_AT"]).row([
        name.to_string(),
        a.granted.to_string(),
        opt(&a.owner.clone().or(a.holder.clone())),
        a.token.map_or("-".into(), |t| t.to_string()),
        a.expires_at.map_or("-".into(), |t| t.to_string()),
    ]);
    let report = Report::ok(reply.result.clone(), table).met_if(a.granted);
    Ok(match (&a.holder, a.not_holder) {
        _ if a.granted => report,
        (Some(h), _) => report.note(format!("{name} is held by {h}")),
        (None, _) => report.note(format!(
            "not the holder of {name} (expired, released, or another token)"
        )),
    })
}

/// Reports a release (exit 5 unless released).
pub fn released(name: &str, reply: &Reply) -> Result<Report, CtlError> {
    let a: LockAnswer = parse(reply, "lock_release")?;
    let table = Table::new(&["NAME", "RELEASED"]).row([name.to_string(), a.released.to_string()]);
    let report = Report::ok(reply.result.clone(), table).met_if(a.released);
    Ok(if a.released {
        report
    } else {
        report.note(format!(
            "not the holder of {name} (expired, released, or another token)"
        ))
    })
}

/// Reports the holder (`-` columns when free).
pub fn held(name: &str, reply: &Reply) -> Result<Report, CtlError> {
    #[derive(Deserialize)]
    struct Holder {
        owner: String,
        token: u64,
        expires_at: u64,
    }
    #[derive(Deserialize)]
    struct Answer {
        holder: Option<Holder>,
    }
    let a: Answer = parse(reply, "lock_holder")?;
    let row = match &a.holder {
        Some(h) => [
            name.to_string(),
            h.owner.clone(),
            h.token.to_string(),
            h.expires_at.to_string(),
        ],
        None => [name.to_string(), "-".into(), "-".into(), "-".into()],
    };
    let table = Table::new(&["NAME", "OWNER", "TOKEN", "EXPIRES_AT"]).row(row);
    let mut json = reply.result.clone();
    json["name"] = json!(name);
    Ok(Report::ok(json, table))
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
    fn calls_carry_the_params_of_examples_lock() {
        let a = acquire("l", "me", Duration::from_secs(10), Duration::from_millis(1500));
        assert_eq!(
            a.params,
            json!({"name": "l", "owner": "me", "ttl_ms": 10_000, "wait_ms": 1500})
        );
        assert_eq!((a.kind, a.extra_time), (CallKind::Write, Duration::from_millis(1500)));
        assert_eq!(
            renew("l", "me", 7, Duration::from_secs(1)).params,
            json!({"name": "l", "owner": "me", "token": 7, "ttl_ms": 1000})
        );
        assert_eq!(release("l", "me", 7).kind, CallKind::Write);
        assert_eq!(holder("l").params, json!({"name": "l"}));
    }

    #[test]
    fn every_answer_shape_reports_its_verdict() {
        let g = granted(
            "l",
            &reply(json!({"granted": true, "owner": "me", "token": 5, "expires_at": 99})),
            "lock_acquire",
        )
        .unwrap();
        assert_eq!((g.verdict, g.table.rows[0][3].as_str()), (Verdict::Ok, "5"));
        let h = granted(
            "l",
            &reply(json!({"granted": false, "holder": "you", "expires_at": 99})),
            "lock_acquire",
        )
        .unwrap();
        assert_eq!(h.verdict, Verdict::NotMet);
        assert!(h.notes[0].contains("you"));
        let n = released(
            "l",
            &reply(json!({"granted": false, "released": false, "not_holder": true})),
        )
        .unwrap();
        assert_eq!(n.verdict, Verdict::NotMet);
        let r = released("l", &reply(json!({"released": true}))).unwrap();
        assert_eq!(r.verdict, Verdict::Ok);
        let free = held("l", &reply(json!({"holder": null}))).unwrap();
        assert_eq!(free.table.rows[0][1], "-");
    }
}
