//! FileStorage against a model: random sequences of appends (some overwriting a
//! suffix across segments), hard states, compactions, snapshot installs (conflicting
//! or beyond the log) and restarts, on tiny segments and a tiny cache; after every
//! step it must read exactly like raft-core's MemStorage given the same writes.

mod common;

use common::model::{view, Op};
use common::steps::{step, to_op};
use proptest::prelude::*;
use raft_core::MemStorage;

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn file_storage_reads_like_the_model(steps in proptest::collection::vec(step(), 1..40), segment in 64u64..600, cache in 0u64..800) {
        let dir = tempfile::tempdir().unwrap();
        let options = common::no_fsync(raft_storage::Options::default().segment_size(segment).cache_bytes(cache));
        let mut store = common::open(dir.path(), &options);
        let mut model = MemStorage::default();
        let mut term = 1;
        let mut history = Vec::new();
        for step in &steps {
            let op = to_op(step, &model, &mut term);
            history.push(op.describe());
            match &op {
                Op::Reopen => store = common::reopen(store),
                op => {
                    op.apply(&mut store);
                    op.apply(&mut model);
                }
            }
            prop_assert_eq!(view(&store), view(&model), "after:\n  {}", history.join("\n  "));
        }
        let store = common::reopen(store);
        prop_assert_eq!(view(&store), view(&model), "after a final reopen of:\n  {}", history.join("\n  "));
    }
}
