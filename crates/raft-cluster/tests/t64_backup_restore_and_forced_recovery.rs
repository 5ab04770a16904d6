//! Disaster recovery through real data directories:
//! - a backup taken from the leader while writers run (`snapshot_now`, then
//!   `open_snapshot` written with `raft_storage::backup::write_backup`) seeds a new
//!   one-node cluster (`restore_backup`) that serves every write acknowledged before
//!   the backup and takes new ones;
//! - after two of three data directories are lost for good, `force_single_voter` on
//!   the survivor's lets it elect itself, serve every write the cluster acknowledged,
//!   and take new ones.

mod support;

use std::sync::{Arc, Mutex};

use raft_cluster::{MemNetwork, RaftNode};
use raft_core::Membership;
use raft_storage::backup::{force_single_voter, restore_backup, write_backup};
use raft_storage::{FileStorage, Options};
use support::kv::{Kv, KvState, Put};
use support::*;

fn options() -> Options {
    Options::default().segment_size(16 << 10)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_from_the_leader_seeds_a_new_cluster_with_every_acknowledged_write() {
    let tc = TestCluster::start(3, config(50)).await;
    let writers = tc.spawn_writers(3, 1_000_000);
    tc.wait_acked(150).await;
    let leader = tc.leader().await;
    let acked_before = tc.acked();
    leader.snapshot_now().await.expect("snapshot");
    let (info, data) = leader.open_snapshot().await.expect("open");
    let file = tc.dir.path().join("backup.erb");
    let written = tokio::task::spawn_blocking({
        let file = file.clone();
        move || {
            let mut out = std::fs::File::create(&file)?;
            let mut data = data;
            let n = write_backup(&info.meta, info.len, &mut data, &mut out).map_err(std::io::Error::other)?;
            out.sync_all()?;
            Ok::<u64, std::io::Error>(n)
        }
    })
    .await
    .unwrap()
    .expect("backup written");
    assert!(written > 0);
    writers.stop();
    writers.join().await;

    // A new cluster of one, seeded from the backup.
    let dir = tempfile::tempdir().unwrap();
    let seeded = restore_backup(dir.path(), options(), &file, Membership::with_voters(["solo"])).expect("restore");
    assert!(seeded.index >= acked_before.iter().map(|a| a.index).max().unwrap_or(0));
    let state = Arc::new(Mutex::new(KvState::default()));
    let net = MemNetwork::new();
    let solo = RaftNode::start(
        "solo",
        config(0),
        FileStorage::open(dir.path(), options()).unwrap(),
        Kv::new(state.clone()),
        net.transport("solo"),
        None,
    )
    .await
    .expect("the seeded node starts");
    let index = {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            match solo.propose(Put::new(999, 1)).await {
                Ok(i) => break i,
                Err(_) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await
                }
                Err(e) => panic!("the seeded node takes no write: {e}"),
            }
        }
    };
    assert!(index > seeded.index, "new writes go after the backup");
    let s = state.lock().unwrap().clone();
    for a in &acked_before {
        assert_eq!(
            s.first_applied.get(&a.id),
            Some(&a.index),
            "write {} from before the backup",
            a.id
        );
    }
    assert_eq!(s.data.get("w999"), Some(&1));
    solo.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_survivor_of_a_lost_majority_is_forced_to_lead_alone_and_keeps_every_acknowledged_write() {
    let mut tc = TestCluster::start(3, config(40)).await;
    tc.spawn_writers(3, 60).join().await;
    // Every node applied everything (so the survivor holds every acknowledged write).
    tc.check().await;
    let acked = tc.acked();
    let ids = tc.running();
    tc.stop_all().await;
    // Two data directories are gone for good; the third survives.
    let survivor = ids[0].clone();
    for id in &ids[1..] {
        std::fs::remove_dir_all(tc.dir.path().join(id.as_str())).unwrap();
    }
    let report = force_single_voter(&tc.dir.path().join(survivor.as_str()), options(), &survivor).expect("forced");
    assert!(report.kept_through >= acked.iter().map(|a| a.index).max().unwrap_or(0));

    let node = tc.restart(&survivor).await;
    wait_until("the survivor to lead alone", || {
        node.view().role == raft_core::Role::Leader
    })
    .await;
    let st = node.status().await.unwrap();
    assert_eq!(st.membership.voters, [survivor.clone()].into_iter().collect());
    // Every write the old cluster acknowledged is there.
    let applied = || tc.state(&survivor);
    wait_until("the survivor to apply its log", || {
        applied().applied.len() >= acked.len()
    })
    .await;
    let s = applied();
    for a in &acked {
        assert_eq!(
            s.first_applied.get(&a.id),
            Some(&a.index),
            "acknowledged write {}",
            a.id
        );
    }
    let i = node.propose(Put::new(777, 1)).await.expect("a new write");
    assert!(i > report.membership_index);
}
