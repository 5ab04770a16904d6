//! Helpers for the multi-log tests: opening, counting fsyncs, a workload over several
//! groups as one list of operations, and the states a crash during one may leave.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use raft_core::{Entry, HardState, MemStorage};
use raft_storage::vfs::{LockOutcome, OpenMode, Vfs, VfsFile};
use raft_storage::{GroupLog, LogStore, MultiLog, Options};

use proptest::prelude::*;
use raft_core::Storage;

use super::model::{crash_states, view, Op, View};
use super::steps::{step, to_op, Step};

/// Opens a multi-log, panicking with the error.
pub fn open(dir: &Path, options: &Options) -> MultiLog {
    MultiLog::open(dir, options.clone()).unwrap_or_else(|e| panic!("open {}: {e}", dir.display()))
}

/// A handle on group `id`, panicking with the error.
pub fn group(log: &MultiLog, id: u64) -> GroupLog {
    log.group(id).unwrap_or_else(|e| panic!("group {id}: {e}"))
}

/// What a workload does to a multi-log.
#[derive(Clone, Debug)]
pub enum MOp {
    /// An op on one group (`Op::Reopen` reopens the whole multi-log).
    On(u64, Op),
    /// Group commit: `write_unsynced` of entries and a hard state on each group in
    /// turn, then one sync.
    Round(Vec<(u64, Vec<Entry>, HardState)>),
    /// Removes a group.
    Remove(u64),
}

impl MOp {
    /// One line, for failure messages.
    pub fn describe(&self) -> String {
        match self {
            MOp::On(g, op) => format!("g{g}: {}", op.describe()),
            MOp::Round(w) => {
                let parts: Vec<String> = w
                    .iter()
                    .map(|(g, es, hs)| format!("g{g} +{} t{} c{}", es.len(), hs.term, hs.commit))
                    .collect();
                format!("round [{}]", parts.join(", "))
            }
            MOp::Remove(g) => format!("remove g{g}"),
        }
    }

    /// Applies the op to per-group models (creating groups as needed).
    pub fn apply_model(&self, models: &mut BTreeMap<u64, MemStorage>) {
        match self {
            MOp::On(_, Op::Reopen) => {}
            MOp::On(g, op) => op.apply(models.entry(*g).or_default()),
            MOp::Round(w) => {
                for (g, es, hs) in w {
                    let m = models.entry(*g).or_default();
                    m.append(es).unwrap();
                    m.set_hard_state(hs.clone());
                }
            }
            MOp::Remove(g) => {
                models.remove(g);
            }
        }
    }

    /// Applies the op to a multi-log (`Reopen` is the caller's business).
    pub fn apply(&self, log: &MultiLog) {
        match self {
            MOp::On(_, Op::Reopen) => {}
            MOp::On(g, op) => op.apply(&mut group(log, *g)),
            MOp::Round(w) => {
                let mut domain = None;
                for (g, es, hs) in w {
                    let mut s = group(log, *g);
                    s.write_unsynced(es, Some(hs)).unwrap();
                    domain = s.sync_domain();
                }
                if let Some(d) = domain {
                    d.sync().unwrap();
                }
            }
            MOp::Remove(g) => log.remove_group(*g).unwrap(),
        }
    }

    /// The states a crash during this op may leave group `g` in (`None`: absent),
    /// given its state before and after.
    pub fn crash_states(&self, g: u64, before: Option<&View>, after: Option<&View>) -> Vec<Option<View>> {
        let mut out = vec![before.cloned(), after.cloned()];
        match self {
            MOp::On(h, op) if *h == g => {
                if let (Some(b), Some(a)) = (before, after) {
                    out.extend(crash_states(b, op, a).into_iter().map(Some));
                }
                if before.is_none() {
                    // Created by this op, and its creation may not have reached the disk.
                    out.push(Some(fresh()));
                    if let Some(a) = after {
                        out.extend(crash_states(&fresh(), op, a).into_iter().map(Some));
                    }
                }
            }
            MOp::Round(w) => {
                for (h, es, _) in w.iter().filter(|w| w.0 == g) {
                    let b = before.cloned().unwrap_or_else(fresh);
                    if before.is_none() {
                        out.push(Some(fresh()));
                    }
                    let mut mid = MemStorage::default();
                    restore(&mut mid, &b);
                    mid.append(es).unwrap();
                    let mid = view(&mid);
                    let _ = h;
                    out.extend(crash_states(&b, &Op::Append(es.clone()), &mid).into_iter().map(Some));
                    out.push(Some(mid));
                }
            }
            _ => {}
        }
        out
    }
}

/// A new group's state.
pub fn fresh() -> View {
    view(&MemStorage::default())
}

/// Makes `m` (empty) read like `v`.
fn restore(m: &mut MemStorage, v: &View) {
    if v.snapshot.meta.index > 0 {
        m.apply_snapshot(v.snapshot.clone());
    }
    m.append(&v.entries).unwrap();
    m.set_hard_state(v.hard_state.clone());
}

/// Every group's view.
pub fn views(log: &MultiLog) -> BTreeMap<u64, View> {
    log.groups().into_iter().map(|g| (g, view(&group(log, g)))).collect()
}

/// Every model's view.
pub fn model_views(models: &BTreeMap<u64, MemStorage>) -> BTreeMap<u64, View> {
    models.iter().map(|(g, m)| (*g, view(m))).collect()
}

/// A file system that counts `fdatasync`s of files whose name ends in `suffix`.
#[derive(Debug)]
pub struct CountingVfs<V> {
    pub inner: V,
    pub suffix: &'static str,
    pub syncs: Arc<AtomicU64>,
}

impl<V: Vfs> CountingVfs<V> {
    pub fn new(inner: V, suffix: &'static str) -> Self {
        CountingVfs {
            inner,
            suffix,
            syncs: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn count(&self) -> u64 {
        self.syncs.load(Ordering::SeqCst)
    }
}

#[derive(Debug)]
struct CountingFile {
    file: Box<dyn VfsFile>,
    syncs: Option<Arc<AtomicU64>>,
}

impl<V: Vfs> Vfs for CountingVfs<V> {
    fn create_dir_all(&self, dir: &Path) -> std::io::Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn list(&self, dir: &Path) -> std::io::Result<Vec<String>> {
        self.inner.list(dir)
    }
    fn is_dir(&self, path: &Path) -> bool {
        self.inner.is_dir(path)
    }
    fn open(&self, path: &Path, mode: OpenMode) -> std::io::Result<Box<dyn VfsFile>> {
        let file = self.inner.open(path, mode)?;
        let counted = path.to_string_lossy().ends_with(self.suffix);
        Ok(Box::new(CountingFile {
            file,
            syncs: counted.then(|| self.syncs.clone()),
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> std::io::Result<()> {
        self.inner.remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        self.inner.sync_dir(dir)
    }
    fn lock_dir(&self, dir: &Path) -> std::io::Result<LockOutcome> {
        self.inner.lock_dir(dir)
    }
}

impl VfsFile for CountingFile {
    fn size(&self) -> std::io::Result<u64> {
        self.file.size()
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        self.file.write_all_at(buf, offset)
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.file.set_len(len)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        if let Some(n) = &self.syncs {
            n.fetch_add(1, Ordering::SeqCst);
        }
        self.file.sync_data()
    }
}

/// How many groups the random workloads use.
pub const GROUPS: u64 = 4;

/// One random step of a multi-group workload.
#[derive(Clone, Debug)]
pub enum MStep {
    On(u64, Step),
    /// Each group with `true` appends `len` entries (and a hard state) in one round.
    Round(Vec<bool>, u64),
    Remove(u64),
}

/// A random step.
pub fn mstep() -> impl Strategy<Value = MStep> {
    prop_oneof![
        10 => (0..GROUPS, step()).prop_map(|(g, s)| MStep::On(g, s)),
        3 => (proptest::collection::vec(any::<bool>(), GROUPS as usize), 1u64..5).prop_map(|(w, n)| MStep::Round(w, n)),
        1 => (0..GROUPS).prop_map(MStep::Remove),
    ]
}

/// Turns a step into an op on the models' current state.
pub fn to_mop(s: &MStep, models: &BTreeMap<u64, MemStorage>, terms: &mut BTreeMap<u64, u64>) -> MOp {
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
                let es = super::model::entries(last + 1..last + 1 + n, term.max(m.term(last).unwrap_or(1)));
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
