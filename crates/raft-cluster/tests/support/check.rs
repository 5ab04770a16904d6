//! The final checker's invariants over one agreed history.

use std::collections::BTreeMap;

use super::{Ack, KvState};

/// The invariants of one agreed history against what the clients saw.
pub fn check_history(state: &KvState, acked: &[Ack]) {
    for w in state.applied.windows(2) {
        assert!(
            w[0].0 < w[1].0,
            "index applied twice or out of order: {:?} then {:?}",
            w[0],
            w[1]
        );
    }
    let mut first = BTreeMap::new();
    for (index, id) in &state.applied {
        first.entry(*id).or_insert(*index);
    }
    assert_eq!(
        first, state.first_applied,
        "the dedup table disagrees with the apply log"
    );
    let mut highest: BTreeMap<&str, u64> = BTreeMap::new();
    for a in acked {
        assert_eq!(
            state.first_applied.get(&a.id),
            Some(&a.index),
            "acknowledged write {a:?} is not applied at the index its client was told"
        );
        let h = highest.entry(&a.key).or_default();
        *h = (*h).max(a.value);
    }
    for (key, value) in highest {
        let now = state.data.get(key).copied().unwrap_or(0);
        assert!(now >= value, "acknowledged {key} = {value} lost: the state has {now}");
    }
}
