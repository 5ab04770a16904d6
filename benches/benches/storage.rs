//! raft-storage's FileStorage against the disk it runs on, measured in the same run:
//!
//! - append with fsync (256 B and 4 KiB entries, 1 / 16 / 256 per batch) against a
//!   plain `write` + `fdatasync` of the same bytes to a file in the same directory;
//! - sequential and random reads by index (from disk: the cache is small) against a
//!   plain `pread` of the same bytes from a file in the same directory.
//!
//! Each iteration times one operation of ours and one of the limit, alternating which
//! goes first, so both see the same disk and the same load (the machine may be shared);
//! criterion reports ours, and a `ratio` line after each bench gives both throughputs
//! and our fraction of the limit. Set `EASYRAFT_BENCH_DIR` to measure another disk
//! (default: the system temp dir).

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use raft_core::{Entry, EntryPayload, Snapshot, SnapshotMeta, Storage};
use raft_storage::{Durability, FileStorage, LogStore, Options};

/// Disk space an append bench may use before it compacts (untimed).
const RESET_BYTES: u64 = 128 << 20;

fn bench_dir() -> tempfile::TempDir {
    match std::env::var_os("EASYRAFT_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d).expect("EASYRAFT_BENCH_DIR is writable"),
        None => tempfile::tempdir().expect("temp dir"),
    }
}

fn entry(index: u64, size: usize) -> Entry {
    Entry {
        term: 1,
        index,
        payload: EntryPayload::Command(Bytes::from(vec![(index % 251) as u8; size])),
    }
}

/// Mean time per iteration of each measured routine, over all of criterion's calls.
#[derive(Default)]
struct Means(BTreeMap<String, (Duration, u64)>);

impl Means {
    fn add(&mut self, name: &str, total: Duration, iters: u64) {
        let e = self.0.entry(name.to_owned()).or_default();
        e.0 += total;
        e.1 += iters;
    }

    fn per_iter(&self, name: &str) -> Option<f64> {
        let (total, iters) = self.0.get(name)?;
        Some(total.as_secs_f64() / (*iters).max(1) as f64)
    }

    /// Prints our throughput next to the limit's, and their ratio (when both ran).
    fn report(&self, ours: &str, limit: &str, bytes_per_iter: u64) {
        let (Some(o), Some(l)) = (self.per_iter(ours), self.per_iter(limit)) else {
            return;
        };
        let mbps = |secs: f64| bytes_per_iter as f64 / secs / 1e6;
        println!(
            "ratio {ours}: file_storage {:.2} MB/s ({:.1} us/op), {limit} {:.2} MB/s ({:.1} us/op): {:.2} of the limit",
            mbps(o),
            o * 1e6,
            mbps(l),
            l * 1e6,
            l / o
        );
    }
}

/// A plain file appended with `write` + `fdatasync`, restarted when it gets large.
struct PlainLog {
    path: PathBuf,
    file: File,
    len: u64,
}

impl PlainLog {
    fn new(dir: &Path) -> Self {
        let path = dir.join("plain.log");
        let file = File::create(&path).expect("create plain file");
        PlainLog { path, file, len: 0 }
    }

    fn append_sync(&mut self, bytes: &[u8]) -> Duration {
        if self.len > RESET_BYTES {
            self.file = File::create(&self.path).expect("recreate plain file");
            self.len = 0;
        }
        let t = Instant::now();
        self.file.write_all(bytes).expect("write");
        self.file.sync_data().expect("fdatasync");
        let d = t.elapsed();
        self.len += bytes.len() as u64;
        d
    }
}

fn append(c: &mut Criterion) {
    let means = RefCell::new(Means::default());
    let mut g = c.benchmark_group("storage/append");
    for &size in &[256usize, 4096] {
        for &batch in &[1usize, 16, 256] {
            let bytes = (size * batch) as u64;
            g.throughput(Throughput::Bytes(bytes));
            let dir = bench_dir();
            let ours = format!("{size}B/batch{batch}");
            let limit = format!("{ours}/limit_write_fdatasync");
            let mut plain = PlainLog::new(dir.path());
            let payload = vec![7u8; size * batch];
            let options = Options::default().durability(Durability::Fsync);
            let mut store = FileStorage::open(dir.path().join("log"), options).expect("open");
            let mut next = 1u64;
            let mut since_reset = 0u64;
            g.bench_function(&ours, |b| {
                b.iter_custom(|iters| {
                    let (mut total, mut limit_total) = (Duration::ZERO, Duration::ZERO);
                    for k in 0..iters {
                        if since_reset > RESET_BYTES {
                            compact(&mut store, next - 1);
                            since_reset = 0;
                        }
                        let entries: Vec<Entry> = (next..next + batch as u64).map(|i| entry(i, size)).collect();
                        if k % 2 == 1 {
                            limit_total += plain.append_sync(&payload);
                        }
                        let t = Instant::now();
                        store.append(&entries).expect("append");
                        total += t.elapsed();
                        if k % 2 == 0 {
                            limit_total += plain.append_sync(&payload);
                        }
                        next += batch as u64;
                        since_reset += bytes;
                    }
                    means.borrow_mut().add(&ours, total, iters);
                    means.borrow_mut().add(&limit, limit_total, iters);
                    total
                })
            });
            means.borrow().report(&ours, &limit, bytes);
        }
    }
    g.finish();
}

/// Snapshots the whole log, which deletes its segments (outside the timed part).
fn compact(store: &mut FileStorage, index: u64) {
    let term = store.term(index).expect("term");
    let snap = Snapshot {
        meta: SnapshotMeta {
            index,
            term,
            ..SnapshotMeta::default()
        },
        data: Bytes::new(),
    };
    store.save_snapshot(&snap).expect("compact");
}

fn read(c: &mut Criterion) {
    let means = RefCell::new(Means::default());
    let mut g = c.benchmark_group("storage/read");
    for &size in &[256usize, 4096] {
        // A log of 32 MiB of payload read back through a 64 KiB cache, and a plain file
        // of the same size in the same directory.
        let dir = bench_dir();
        let n = (32u64 << 20) / size as u64;
        let options = Options::default()
            .cache_bytes(64 << 10)
            .durability(Durability::UnsafeNoFsyncForTests);
        let mut store = FileStorage::open(dir.path().join("log"), options).expect("open");
        for chunk in (1..=n).collect::<Vec<_>>().chunks(1024) {
            let entries: Vec<Entry> = chunk.iter().map(|&i| entry(i, size)).collect();
            store.append(&entries).expect("append");
        }
        let plain_path = dir.path().join("plain.dat");
        let plain = {
            let mut f = OpenOptions::new()
                .create(true)
                .truncate(true)
                .read(true)
                .write(true)
                .open(&plain_path)
                .expect("plain");
            f.write_all(&vec![7u8; (n as usize) * size]).expect("write plain");
            f
        };

        // Sequential: windows of 64 entries through the whole log.
        let window = 64u64;
        let bytes = window * size as u64;
        g.throughput(Throughput::Bytes(bytes));
        let ours = format!("{size}B/sequential");
        let limit = format!("{ours}/limit_pread");
        let mut buf = vec![0u8; bytes as usize];
        let mut low = 1u64;
        g.bench_function(&ours, |b| {
            b.iter_custom(|iters| {
                let (mut total, mut limit_total) = (Duration::ZERO, Duration::ZERO);
                for _ in 0..iters {
                    if low + window > n + 1 {
                        low = 1;
                    }
                    let t = Instant::now();
                    let got = store.entries(low, low + window, u64::MAX).expect("entries");
                    total += t.elapsed();
                    assert_eq!(got.len() as u64, window);
                    let t = Instant::now();
                    plain.read_exact_at(&mut buf, (low - 1) * size as u64).expect("pread");
                    limit_total += t.elapsed();
                    low += window;
                }
                means.borrow_mut().add(&ours, total, iters);
                means.borrow_mut().add(&limit, limit_total, iters);
                total
            })
        });
        means.borrow().report(&ours, &limit, bytes);

        // Random: one entry at a random index.
        g.throughput(Throughput::Bytes(size as u64));
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let ours = format!("{size}B/random");
        let limit = format!("{ours}/limit_pread");
        let mut one = vec![0u8; size];
        g.bench_function(&ours, |b| {
            b.iter_custom(|iters| {
                let (mut total, mut limit_total) = (Duration::ZERO, Duration::ZERO);
                for _ in 0..iters {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let i = 1 + rng % n;
                    let t = Instant::now();
                    let got = store.entries(i, i + 1, u64::MAX).expect("entries");
                    total += t.elapsed();
                    assert_eq!(got.len(), 1);
                    let t = Instant::now();
                    plain.read_exact_at(&mut one, (i - 1) * size as u64).expect("pread");
                    limit_total += t.elapsed();
                }
                means.borrow_mut().add(&ours, total, iters);
                means.borrow_mut().add(&limit, limit_total, iters);
                total
            })
        });
        means.borrow().report(&ours, &limit, size as u64);
    }
    g.finish();
}

criterion_group!(benches, append, read);
criterion_main!(benches);
