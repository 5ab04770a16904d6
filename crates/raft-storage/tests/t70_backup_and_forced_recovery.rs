//! Backups and disaster recovery: a backup reads back exactly and any damage to it
//! (a flipped byte anywhere, a cut, trailing bytes) is refused; restoring seeds an
//! empty data directory under a new membership and refuses a used one; forcing a
//! single voter keeps every entry and commits through a new membership entry.

mod common;

use std::io::{Read, Write};

use raft_core::{EntryPayload, Membership, NodeId, SnapshotMeta, Storage};
use raft_storage::backup::{force_single_voter, read_backup, restore_backup, write_backup, BackupError};
use raft_storage::{contract, LogStore};

fn meta() -> SnapshotMeta {
    SnapshotMeta {
        index: 40,
        term: 3,
        membership: Membership::with_voters(["a", "b", "c"]),
    }
}

fn backup(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let n = write_backup(&meta(), data.len() as u64, &mut &data[..], &mut out).unwrap();
    assert_eq!(n, out.len() as u64);
    out
}

fn read_all(file: &[u8]) -> Result<(SnapshotMeta, Vec<u8>), String> {
    let (meta, mut data) = read_backup(file).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    data.read_to_end(&mut out).map_err(|e| e.to_string())?;
    Ok((meta, out))
}

#[test]
fn a_backup_reads_back_and_every_damage_is_refused() {
    let data: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
    let file = backup(&data);
    assert_eq!(read_all(&file), Ok((meta(), data.clone())));
    for at in 0..file.len() {
        let mut bad = file.clone();
        bad[at] ^= 0x20;
        assert!(read_all(&bad).is_err(), "a flip at byte {at} went unnoticed");
    }
    for cut in [0, 7, 12, 30, file.len() - 5, file.len() - 1] {
        assert!(read_all(&file[..cut]).is_err(), "cut at {cut}");
    }
    let mut longer = file.clone();
    longer.push(0);
    assert!(read_all(&longer).unwrap_err().contains("after the end"));
    // Fewer bytes than announced: refused while writing.
    let err = write_backup(&meta(), 10, &mut &b"short"[..], &mut Vec::new()).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
    // A description out of bounds is refused both ways.
    let zero = SnapshotMeta { index: 0, ..meta() };
    assert!(matches!(
        write_backup(&zero, 0, &mut &b""[..], &mut Vec::new()),
        Err(BackupError::Invalid { .. })
    ));
}

#[test]
fn restore_seeds_an_empty_directory_under_a_new_membership_and_refuses_a_used_one() {
    let data = b"the state machine's bytes".repeat(100);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("backup.erb");
    std::fs::File::create(&path).unwrap().write_all(&backup(&data)).unwrap();
    let options = common::small_options();

    let dir = tempfile::tempdir().unwrap();
    let new = Membership::with_voters(["x", "y", "z"]);
    let seeded = restore_backup(dir.path(), options.clone(), &path, new.clone()).unwrap();
    assert_eq!((seeded.index, seeded.term, &seeded.membership), (40, 3, &new));
    let store = common::open(dir.path(), &options);
    let info = store.snapshot_info().unwrap();
    assert_eq!(info.meta, seeded);
    let mut read = Vec::new();
    store.snapshot_reader().unwrap().read_to_end(&mut read).unwrap();
    assert_eq!(read, data);
    assert_eq!(store.first_index().unwrap(), 41);
    assert_eq!(store.hard_state().commit, 40);
    drop(store);

    // A used directory is left alone.
    let err = restore_backup(dir.path(), options.clone(), &path, new.clone()).unwrap_err();
    assert!(matches!(err, BackupError::NotEmpty { .. }), "{err}");
    // A damaged backup installs nothing.
    let mut bad = backup(&data);
    let at = bad.len() - 100;
    bad[at] ^= 1;
    std::fs::write(&path, &bad).unwrap();
    let fresh = tempfile::tempdir().unwrap();
    assert!(restore_backup(fresh.path(), options.clone(), &path, new).is_err());
    let store = common::open(fresh.path(), &options);
    assert_eq!(store.snapshot_info().unwrap().meta.index, 0, "nothing installed");
}

#[test]
fn forcing_a_single_voter_keeps_every_entry_and_commits_them_under_a_new_membership() {
    let dir = tempfile::tempdir().unwrap();
    let options = common::small_options();
    let mut store = common::open(dir.path(), &options);
    store.append(&contract::entries(1..31, 2)).unwrap();
    store
        .set_hard_state(&raft_core::HardState {
            term: 4,
            vote: Some("b".into()),
            commit: 20,
        })
        .unwrap();
    drop(store);

    let me = NodeId::new("a");
    let r = force_single_voter(dir.path(), options.clone(), &me).unwrap();
    assert_eq!(
        (r.kept_through, r.previously_committed, r.membership_index, r.term),
        (30, 20, 31, 5)
    );
    let store = common::open(dir.path(), &options);
    let entries = store.entries(1, 32, u64::MAX).unwrap();
    assert_eq!(entries.len(), 31);
    assert_eq!(&entries[..30], &contract::entries(1..31, 2)[..]);
    assert_eq!(
        entries[30].payload,
        EntryPayload::Membership(Membership::with_voters(["a"]))
    );
    assert_eq!(store.hard_state().commit, 31);
    assert_eq!(store.hard_state().term, 5);
    drop(store);

    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        force_single_voter(empty.path(), options, &me),
        Err(BackupError::NothingToRecover { .. })
    ));
}
