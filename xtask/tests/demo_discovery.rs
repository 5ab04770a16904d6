//! `cargo xtask demo --discovery file|dns|etcd`: the whole demo scenario (election,
//! leader kill, restart from disk, partition and heal) passes with the nodes finding
//! each other through each real backend: JSON files, a DNS server on loopback, and a
//! real etcd on loopback (Debian's etcd-server; without it this test fails and says so).

use xtask::demo::{run, DemoOptions};
use xtask::discovery::DemoDiscovery;

async fn passes_with(discovery: DemoDiscovery) {
    let report = run(DemoOptions {
        nodes: 3,
        writes: 10,
        discovery,
        ..DemoOptions::default()
    })
    .await
    .unwrap_or_else(|e| panic!("the demo with {discovery:?} discovery did not run to the end: {e}"));
    assert!(report.passed, "{discovery:?}: {}: {:?}", report.verdict, report.checks);
    assert_eq!(report.acknowledged, 30, "{discovery:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_passes_with_file_discovery() {
    passes_with(DemoDiscovery::File).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_passes_with_dns_discovery() {
    passes_with(DemoDiscovery::Dns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_passes_with_etcd_discovery() {
    passes_with(DemoDiscovery::Etcd).await;
}
