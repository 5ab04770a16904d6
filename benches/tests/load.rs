//! `cluster_load`'s workload stays runnable: a short easyraft run on both storages
//! (openraft is behind the `openraft` feature and run by `cargo xtask bench compare`).

use std::time::Duration;

use benches::load;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn easyraft_load_commits_and_reports_fsyncs() {
    let (warmup, window) = (Duration::from_millis(50), Duration::from_millis(300));
    let (mem, io) = load::easyraft::run(false, 4, warmup, window).await;
    assert!(mem.commits > 0 && mem.total_ops >= mem.commits, "{mem:?}");
    assert!(mem.p50 <= mem.p99 && io.fsyncs_leader.is_none(), "{mem:?} {io:?}");
    let (file, io) = load::easyraft::run(true, 4, warmup, window).await;
    assert!(file.commits > 0, "{file:?}");
    // Every committed entry was fsynced on the leader, alone or in a batch.
    assert!(io.fsyncs_leader.is_some_and(|f| f > 0.0), "{io:?}");
}
