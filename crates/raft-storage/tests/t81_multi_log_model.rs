//! MultiLog against a model: random interleaved operations on several groups (appends
//! that overwrite suffixes, hard states, compactions, snapshot installs, group-commit
//! rounds across groups, group removals) and reopens of the whole multi-log, on tiny
//! segments so that checkpoints and segment deletion happen all the time. After every
//! step every group must read exactly like its own MemStorage given the same writes,
//! and the multi-log must hold exactly the model's groups.

mod common;

use std::collections::BTreeMap;

use common::model::Op;
use common::multi::{model_views, open, views, MOp};
use common::steps::{step, to_op, Step};
use proptest::prelude::*;
use raft_core::{HardState, MemStorage, Storage};

const GROUPS: u64 = 4;

#[derive(Clone, Debug)]
enum MStep {
    On(u64, Step),
    /// Each group with `true` appends `len` entries (and a hard state) in one round.
    Round(Vec<bool>, u64),
    Remove(u64),
}

fn mstep() -> impl Strategy<Value = MStep> {
    prop_oneof![
        10 => (0..GROUPS, step()).prop_map(|(g, s)| MStep::On(g, s)),
        3 => (proptest::collection::vec(any::<bool>(), GROUPS as usize), 1u64..5).prop_map(|(w, n)| MStep::Round(w, n)),
        1 => (0..GROUPS).prop_map(MStep::Remove),
    ]
}

/// Turns a step into an op on the models' current state.
fn to_mop(s: &MStep, models: &BTreeMap<u64, MemStorage>, terms: &mut BTreeMap<u64, u64>) -> MOp {
    let empty = MemStorage::default();
    match s {
        MStep::On(g, Step::Reopen) => MOp::On(*g, Op::Reopen),
        MStep::On(g, step) => {
            let term = terms.entry(*g).or_insert(1);
            MOp::On(*g, to_op(step, models.get(g).unwrap_or(&empty), term))
        }
        MStep::Round(which, n) => {
            let mut w = Vec::new();
            for (g, _) in which.iter().enumerate().filter(|(_, on)| **on) {
                let g = g as u64;
                let m = models.get(&g).unwrap_or(&empty);
                let term = *terms.entry(g).or_insert(1);
                let last = m.last_index().unwrap();
                let es = common::model::entries(last + 1..last + 1 + n, term.max(m.term(last).unwrap_or(1)));
                let hs = HardState {
                    term,
                    vote: Some("n1".into()),
                    commit: m.initial_state().unwrap().hard_state.commit.max(last),
                };
                w.push((g, es, hs));
            }
            MOp::Round(w)
        }
        MStep::Remove(g) => {
            terms.remove(g);
            MOp::Remove(*g)
        }
    }
}

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
