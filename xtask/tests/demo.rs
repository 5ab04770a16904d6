//! Smoke test: `cargo xtask demo`'s whole scenario in-process (3 WebSocket nodes on
//! loopback, file storage, leader kill, restart, partition and heal) must pass, and
//! so must `cargo xtask demo --transport jsonrpc`.

use xtask::demo::{run, DemoOptions, DemoTransport};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_passes_with_three_nodes() {
    let report = run(DemoOptions {
        nodes: 3,
        writes: 20,
        ..DemoOptions::default()
    })
    .await
    .expect("the demo ran to the end");
    assert!(report.passed, "{}: {:?}", report.verdict, report.checks);
    assert!(
        report.verdict.starts_with("PASS: 3 nodes agree on "),
        "{}",
        report.verdict
    );
    assert_eq!(report.acknowledged, 60);
    assert_eq!(report.keys, 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_passes_over_jsonrpc() {
    let report = run(DemoOptions {
        nodes: 3,
        writes: 20,
        transport: DemoTransport::JsonRpc,
        ..DemoOptions::default()
    })
    .await
    .expect("the demo ran to the end");
    assert!(report.passed, "{}: {:?}", report.verdict, report.checks);
    assert_eq!(report.acknowledged, 60);
    assert!(
        report
            .checks
            .iter()
            .any(|(c, ok)| *ok && c.contains("RaftHandle::status()")),
        "{:?}",
        report.checks
    );
}
