//! The pure protocol's cost: commits per second of a 3-node cluster of cores with an
//! in-memory message loop, and the cost of stepping one AppendEntries of 64 entries.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use benches::{CoreCluster, SnapshotTransfer};
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use raft_core::{
    AppendRequest, Config, Entry, EntryPayload, HardState, MemStorage, MembershipChange, Message, MessageBody, NodeId,
    RawNode,
};

fn commit_throughput(c: &mut Criterion) {
    let mut g = c.benchmark_group("core/commit");
    for &size in &[64usize, 1024] {
        for &batch in &[1usize, 64] {
            let payload = Bytes::from(vec![7u8; size]);
            g.throughput(Throughput::Elements(batch as u64));
            g.bench_function(format!("{size}B/batch{batch}"), |b| {
                let mut cluster = CoreCluster::new(3, 256);
                b.iter(|| cluster.propose_and_commit(&payload, batch));
            });
        }
    }
    g.finish();
}

fn step_append(c: &mut Criterion) {
    let mut g = c.benchmark_group("core/step");
    let entries: Vec<Entry> = (1..=64)
        .map(|i| Entry {
            term: 1,
            index: i,
            payload: EntryPayload::Command(Bytes::from(vec![1u8; 64])),
        })
        .collect();
    let msg = Message {
        group: 0,
        from: NodeId::new("node1"),
        to: NodeId::new("node2"),
        term: 1,
        body: MessageBody::AppendEntries(AppendRequest {
            prev_log_index: 0,
            prev_log_term: 0,
            entries,
            commit: 0,
        }),
    };
    g.throughput(Throughput::Elements(64));
    g.bench_function("append64", |b| {
        b.iter_batched(
            || {
                let mut s = MemStorage::with_voters(["node1", "node2", "node3"]);
                s.set_hard_state(HardState {
                    term: 1,
                    vote: None,
                    commit: 0,
                });
                let node = RawNode::new(Config::new("node2"), s).expect("valid config");
                (node, msg.clone())
            },
            |(mut node, m)| {
                node.step(m).expect("addressed to node2");
                node.ready()
            },
            BatchSize::SmallInput,
        );
    });
    g.finish();
}

fn snapshot_install(c: &mut Criterion) {
    let mut g = c.benchmark_group("core/snapshot_install");
    g.sample_size(10);
    for &mib in &[1usize, 16, 64] {
        let size = mib << 20;
        g.throughput(Throughput::Bytes(size as u64));
        // The physical floor in the same run: assembling the same bytes from 1 MiB
        // chunks into one buffer, with no protocol at all.
        g.bench_function(format!("{mib}MiB/baseline_memcpy"), |b| {
            let src = Bytes::from(vec![0xABu8; size]);
            b.iter(|| {
                let mut dst = bytes::BytesMut::with_capacity(1 << 20);
                for chunk in src.chunks(1 << 20) {
                    dst.extend_from_slice(chunk);
                }
                dst.freeze().len()
            });
        });
        g.bench_function(format!("{mib}MiB/chunk1MiB"), |b| {
            b.iter_batched(
                || SnapshotTransfer::new(size, 1 << 20),
                |t| assert_eq!(t.run(), size),
                BatchSize::LargeInput,
            );
        });
    }
    g.finish();
}

fn membership_change(c: &mut Criterion) {
    let mut g = c.benchmark_group("core/membership");
    let mut cluster = CoreCluster::new(3, 256);
    cluster.add_spare("node4");
    let node4 = NodeId::new("node4");
    cluster.change_membership(&[MembershipChange::AddLearner(node4.clone())]);
    // One iteration: promote node4 (joint, then leave) and demote it back to a
    // learner (remove, joint, leave; then add as learner).
    g.bench_function("promote_and_remove_voter", |b| {
        b.iter(|| {
            cluster.change_membership(&[MembershipChange::PromoteLearner(node4.clone())]);
            cluster.change_membership(&[MembershipChange::Remove(node4.clone())]);
            cluster.change_membership(&[MembershipChange::AddLearner(node4.clone())]);
        });
    });
    g.finish();
}

criterion_group!(
    benches,
    commit_throughput,
    step_append,
    snapshot_install,
    membership_change
);
criterion_main!(benches);
