//! `easyraftctl lock` against three real `lock` processes.

mod support;

use support::{ctl_json, Nodes};

#[test]
fn t10_acquire_hold_renew_release_with_fencing_tokens() {
    let n = Nodes::start("lock", &["lock", "holder", "ready"]);
    let e = n.all();
    let a = ctl_json(&e, 0, &["lock", "acquire", "job", "--owner", "alice", "--ttl", "60s"]);
    assert_eq!(a["granted"], true);
    let token = a["token"].as_u64().expect("a fencing token");
    let token_s = token.to_string();
    // Someone else: not granted (exit 5), told who holds it.
    let b = ctl_json(
        &e,
        5,
        &[
            "lock", "acquire", "job", "--owner", "bob", "--ttl", "1s", "--wait", "200ms",
        ],
    );
    assert_eq!(
        (b["granted"].clone(), b["holder"].clone()),
        (false.into(), "alice".into())
    );
    let h = ctl_json(&e, 0, &["lock", "holder", "job"]);
    assert_eq!(
        (h["holder"]["owner"].clone(), h["holder"]["token"].as_u64()),
        ("alice".into(), Some(token))
    );
    let r = ctl_json(
        &e,
        0,
        &[
            "lock", "renew", "job", "--owner", "alice", "--token", &token_s, "--ttl", "60s",
        ],
    );
    assert_eq!(r["granted"], true);
    // The wrong token neither renews nor releases.
    let wrong = (token + 1000).to_string();
    ctl_json(&e, 5, &["lock", "renew", "job", "--owner", "alice", "--token", &wrong]);
    ctl_json(
        &e,
        5,
        &["lock", "release", "job", "--owner", "alice", "--token", &wrong],
    );
    let rel = ctl_json(
        &e,
        0,
        &["lock", "release", "job", "--owner", "alice", "--token", &token_s],
    );
    assert_eq!(rel["released"], true);
    assert!(ctl_json(&e, 0, &["lock", "holder", "job"])["holder"].is_null());
    // Free again: bob gets it, with a larger token.
    let b2 = ctl_json(&e, 0, &["lock", "acquire", "job", "--owner", "bob"]);
    assert!(b2["token"].as_u64().is_some_and(|t| t > token), "{b2}");
}

#[test]
fn t20_a_follower_alone_in_endpoints_redirects_lock_writes() {
    let n = Nodes::start("lock", &["lock", "holder", "ready"]);
    let f = n.follower();
    let a = ctl_json(&f, 0, &["lock", "acquire", "via-follower", "--owner", "carol"]);
    assert_eq!(a["granted"], true);
}
