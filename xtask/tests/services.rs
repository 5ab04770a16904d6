//! Smoke test: `cargo xtask demo kv` in-process (3 kv nodes on loopback with file
//! storage, used over HTTP JSON-RPC through a leader kill and a restart) must pass.

use xtask::services::{run, Service, ServiceOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kv_demo_passes() {
    let report = run(ServiceOptions {
        writes: 40,
        ..ServiceOptions::new(Service::Kv)
    })
    .await
    .expect("the demo ran to the end");
    assert!(report.passed, "{}: {:?}", report.verdict, report.checks);
    assert!(
        report.verdict.starts_with("PASS: 3 kv nodes agree on "),
        "{}",
        report.verdict
    );
    // The follower redirect, the CAS pair, the writes through the crash, the restarted
    // node and the final reads were all checked.
    assert!(report.checks.len() >= 9, "{:?}", report.checks);
}
