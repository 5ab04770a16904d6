//! MultiLog against a model: random interleaved operations on several groups (appends
//! that overwrite suffixes, hard states, compactions, snapshot installs, group-commit
//! rounds across groups, group removals) and reopens of the whole multi-log, on tiny
//! segments so that checkpoints and segment deletion happen all the time. After every
//! step every group must read exactly like its own MemStorage given the same writes,
//! and the multi-log must hold exactly the model's groups.

mod common;

use std::collections::BTreeMap;

use common::model::Op;
use common::multi::{model_views, mstep, open, to_mop, views, MOp};
use proptest::prelude::*;
use raft_core::MemStorage;

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Property: whatever the interleaving, each group reads like its own model, before
    /// and after any reopen.
    #[test]
    fn every_group_reads_like_its_model(steps in proptest::collection::vec(mstep(), 1..60), segment in 64u64..1500) {
        let dir = tempfile::tempdir().unwrap();
        let options = common::no_fsync(raft_storage::Options::default().segment_size(segment));
        let mut log = open(dir.path(), &options);
        let mut models: BTreeMap<u64, MemStorage> = BTreeMap::new();
        let mut terms = BTreeMap::new();
        let mut history = Vec::new();
        for s in &steps {
            let op = to_mop(s, &models, &mut terms);
            history.push(op.describe());
            if let MOp::On(_, Op::Reopen) = op {
                drop(log);
                log = open(dir.path(), &options);
            } else {
                op.apply(&log);
                op.apply_model(&mut models);
            }
            prop_assert_eq!(views(&log), model_views(&models), "after:\n  {}", history.join("\n  "));
        }
        drop(log);
        let log = open(dir.path(), &options);
        prop_assert_eq!(views(&log), model_views(&models), "after a final reopen of:\n  {}", history.join("\n  "));
    }
}
