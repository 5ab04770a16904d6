//! Many Raft groups on one host (`RaftHost`): groups on the same three hosts elect and
//! replicate independently over one transport per host, their heartbeats to a peer
//! leave together, a group can run on a subset of the hosts, a message for a group a
//! host does not run is refused with a typed error, and groups are created, removed
//! and recovered at run time on real files (fsync on).

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use raft_cluster::testing::Counter;
use raft_cluster::{HostOptions, InboxError, MemNetwork, RaftConfig, RaftHandle, RaftHost};
use raft_core::{GroupId, Membership, Message, MessageBody, NodeId, Role};
use raft_storage::{FileStorage, GroupLog, LogStore, MultiLog, Options};
use support::counting::Counting;
use support::{ids, wait_until};

type Host<S> = RaftHost<S, Counting>;
type Group = RaftHandle<Counter>;

/// Three hosts on one in-memory network; each group's log in a directory of its own
/// (`FileStorage`), or one shared log per host (`MultiLog`).
struct Hosts<S = FileStorage> {
    net: MemNetwork,
    root: PathBuf,
    hosts: BTreeMap<NodeId, Host<S>>,
    /// Every running group's node, by group and host.
    groups: BTreeMap<(GroupId, NodeId), Group>,
    sends: Arc<AtomicU64>,
    messages: Arc<AtomicU64>,
    quiesce: bool,
    _dir: tempfile::TempDir,
}

fn config() -> RaftConfig {
    RaftConfig::fast()
}

/// Opens a group's storage, waiting while a killed incarnation still holds its lock.
async fn open(dir: &Path) -> FileStorage {
    let options = Options::default().segment_size(16 << 10);
    for _ in 0..300 {
        match FileStorage::open(dir, options.clone()) {
            Ok(s) => return s,
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    FileStorage::open(dir, options).expect("the storage opens")
}

impl<S: LogStore + Send + 'static> Hosts<S> {
    async fn start(n: usize) -> Hosts<S> {
        Self::start_with(n, true).await
    }

    /// Starts `n` hosts whose idle groups quiesce, or not.
    async fn start_with(n: usize, quiesce: bool) -> Hosts<S> {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut hosts = Hosts {
            net: MemNetwork::new(),
            root: dir.path().to_owned(),
            hosts: BTreeMap::new(),
            groups: BTreeMap::new(),
            quiesce,
            sends: Arc::default(),
            messages: Arc::default(),
            _dir: dir,
        };
        for id in ids(n) {
            hosts.start_host(&id).await;
        }
        hosts
    }

    async fn start_host(&mut self, id: &NodeId) {
        let transport = Counting {
            inner: self.net.transport(id.clone()),
            sends: self.sends.clone(),
            messages: self.messages.clone(),
        };
        let options = HostOptions::default()
            .tick_interval(config().heartbeat_interval)
            .liveness_timeout(config().election_timeout)
            .quiesce(self.quiesce);
        let host = RaftHost::start(id.clone(), transport, options)
            .await
            .expect("host starts");
        self.hosts.insert(id.clone(), host);
    }

    /// Starts group `group` on `members` (its founding voters), each with the storage
    /// `storage` opens for it.
    async fn create_with(&mut self, group: GroupId, members: &[NodeId], storage: impl Fn(&NodeId) -> S) {
        for id in members {
            let storage = storage(id);
            let node = self.hosts[id]
                .create_group(
                    group,
                    config(),
                    storage,
                    Counter::default(),
                    Some(Membership::with_voters(members.iter().cloned())),
                )
                .await
                .expect("group starts");
            assert_eq!(node.group(), group);
            self.groups.insert((group, id.clone()), node);
        }
    }

    fn members_on(&self, host: &NodeId) -> Vec<&Group> {
        self.groups
            .iter()
            .filter(|((_, h), _)| h == host)
            .map(|(_, n)| n)
            .collect()
    }

    fn members(&self, group: GroupId) -> Vec<&Group> {
        self.groups
            .iter()
            .filter(|((g, _), _)| *g == group)
            .map(|(_, n)| n)
            .collect()
    }

    /// Waits until one member of the group leads and every other running one follows it.
    async fn leader(&self, group: GroupId) -> Group {
        let members = self.members(group);
        let mut leader = None;
        wait_until(&format!("a leader of group {group}"), || {
            let l = members.iter().find(|n| n.view().role == Role::Leader);
            leader = l.map(|l| (*l).clone());
            l.is_some_and(|l| {
                let term = l.view().term;
                members
                    .iter()
                    .all(|n| n.view().term == term && n.view().leader.as_ref() == Some(l.id()))
            })
        })
        .await;
        leader.expect("a leader")
    }

    /// Proposes `times` adds of `add` to the group through its leader; returns how
    /// many were acknowledged.
    async fn write(&self, group: GroupId, add: u64, times: u64) -> u64 {
        let mut acked = 0;
        while acked < times {
            let leader = self.leader(group).await;
            match leader.propose(add).await {
                Ok(_) => acked += 1,
                Err(e) if e.is_not_leader() || e.is_timeout() => continue,
                Err(e) => panic!("group {group}: {e}"),
            }
        }
        acked
    }

    /// Waits until every member of the group has applied the value `want`.
    async fn converge(&self, group: GroupId, want: u64) {
        for node in self.members(group) {
            let mut seen = 0;
            for _ in 0..3000 {
                seen = node.read_local(()).await.expect("a local read");
                if seen == want {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert_eq!(seen, want, "group {group} on {}", node.id());
        }
    }
}

impl Hosts<FileStorage> {
    /// Starts group `group` on `members` (its founding voters), each in a directory
    /// of its own.
    async fn create(&mut self, group: GroupId, members: &[NodeId]) {
        let mut storages = BTreeMap::new();
        for id in members {
            storages.insert(
                id.clone(),
                open(&self.root.join(id.as_str()).join(group.to_string())).await,
            );
        }
        let storages = std::sync::Mutex::new(storages);
        self.create_with(group, members, |id| {
            storages.lock().unwrap().remove(id).expect("a storage per member")
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t90_groups_on_the_same_hosts_elect_and_replicate_independently() {
    let mut h: Hosts = Hosts::start(3).await;
    let all = ids(3);
    let groups: Vec<GroupId> = (1..=12).collect();
    for &g in &groups {
        h.create(g, &all).await;
    }
    for &g in &groups {
        // Each group's counter sees only its own commands.
        assert_eq!(h.write(g, g, 3).await, 3);
    }
    for &g in &groups {
        h.converge(g, 3 * g).await;
    }
    for (id, host) in &h.hosts {
        let listed = host.groups();
        assert_eq!(
            listed.iter().map(|i| i.group).collect::<Vec<_>>(),
            groups,
            "{id} lists its groups"
        );
        for info in &listed {
            assert_eq!(info.metrics.group, info.group);
            assert!(info.view.running);
            assert_eq!(info.view.applied, info.view.commit, "{id} group {}", info.group);
        }
        let text = listed[0].metrics.to_prometheus(id.as_str());
        assert!(
            text.contains(&format!("easyraft_applied_total{{node=\"{id}\",group=\"1\"}}")),
            "{text}"
        );
    }
    // The leaders are the groups' own: every host leads some group, with 12 groups
    // and random election timeouts (a host leading all would mean shared elections).
    let mut leads: BTreeMap<NodeId, usize> = BTreeMap::new();
    for &g in &groups {
        *leads.entry(h.leader(g).await.id().clone()).or_default() += 1;
    }
    assert!(leads.values().sum::<usize>() == groups.len());
    for host in h.hosts.values() {
        host.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t90_the_heartbeats_of_all_groups_to_a_peer_leave_as_one_batch() {
    // Groups that do not quiesce, so that they heartbeat while idle.
    let mut h: Hosts = Hosts::start_with(3, false).await;
    let all = ids(3);
    let groups = 24;
    for g in 1..=groups {
        h.create(g, &all).await;
    }
    for g in 1..=groups {
        h.leader(g).await;
    }
    // Idle: only heartbeats and their answers flow. Count them over 20 ticks.
    let (sends, messages) = (h.sends.load(Ordering::Relaxed), h.messages.load(Ordering::Relaxed));
    tokio::time::sleep(config().heartbeat_interval * 20).await;
    let sends = h.sends.load(Ordering::Relaxed) - sends;
    let messages = h.messages.load(Ordering::Relaxed) - messages;
    // One batch per group per peer would be one message per send. Every host leads
    // about 8 of the 24 groups and follows the other 16: per tick and peer it has ~8
    // heartbeats to send (together, at the tick) and ~8 answers (as the peer's
    // heartbeats arrive); a batch of heartbeats waits a moment for the other groups', so
    // about 10 messages per send were measured.
    assert!(messages > 0, "the groups heartbeat");
    assert!(
        messages >= 3 * sends,
        "{messages} messages in {sends} sends: the groups' heartbeats are not batched together"
    );
    for host in h.hosts.values() {
        host.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t90_a_group_on_two_of_three_hosts_and_a_message_for_an_unknown_group() {
    let mut h: Hosts = Hosts::start(3).await;
    let all = ids(3);
    let pair = &all[..2];
    h.create(7, pair).await;
    h.create(8, &all).await;
    assert_eq!(h.write(7, 1, 5).await, 5);
    h.converge(7, 5).await;
    assert_eq!(
        h.hosts[&all[2]].groups().iter().map(|i| i.group).collect::<Vec<_>>(),
        vec![8]
    );

    // A message for group 7 reaching the third host, which does not run it.
    let stray = Message {
        group: 7,
        from: all[0].clone(),
        to: all[2].clone(),
        term: 1,
        body: MessageBody::TimeoutNow,
    };
    assert_eq!(
        h.hosts[&all[2]].inbox().deliver(stray),
        Err(InboxError::UnknownGroup { group: 7 })
    );
    // ... and group 8, which it runs, is untouched.
    assert_eq!(h.write(8, 2, 2).await, 2);
    h.converge(8, 4).await;
    for host in h.hosts.values() {
        host.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t90_a_group_removed_from_a_host_and_created_again_from_its_files() {
    let mut h: Hosts = Hosts::start(3).await;
    let all = ids(3);
    for g in [1, 2] {
        h.create(g, &all).await;
        assert_eq!(h.write(g, 1, 3).await, 3);
    }
    let third = all[2].clone();
    h.converge(1, 3).await;
    // The third host leads group 1, and the group goes quiet: then its node there
    // goes while the host lives on (its beats go on), and the other two must still
    // notice (the beats' epoch changes) and elect a new leader.
    let leader = h.leader(1).await;
    if leader.id() != &third {
        leader.transfer_leadership(third.clone()).await.expect("a transfer");
    }
    wait_until("the third host to lead group 1, quiesced", || {
        h.members(1)
            .iter()
            .all(|n| n.view().quiesced && n.view().leader.as_ref() == Some(&third))
    })
    .await;
    h.hosts[&third].remove_group(1).await.expect("group 1 is removed");
    h.groups.remove(&(1, third.clone()));
    assert!(h.hosts[&third].remove_group(1).await.is_err(), "removed twice");
    assert_eq!(
        h.hosts[&third].groups().iter().map(|i| i.group).collect::<Vec<_>>(),
        vec![2]
    );
    let stray = Message {
        group: 1,
        from: all[0].clone(),
        to: third.clone(),
        term: 1,
        body: MessageBody::TimeoutNow,
    };
    assert_eq!(
        h.hosts[&third].inbox().deliver(stray),
        Err(InboxError::UnknownGroup { group: 1 })
    );

    // The other two go on with group 1; group 2 is untouched on all three.
    assert_eq!(h.write(1, 1, 4).await, 4);
    assert_eq!(h.write(2, 1, 1).await, 1);
    h.converge(2, 4).await;
    assert!(
        matches!(
            h.hosts[&third]
                .create_group(2, config(), open(&h.root.join("x")).await, Counter::default(), None)
                .await,
            Err(raft_cluster::Error::GroupExists(2))
        ),
        "a group runs once per host"
    );

    // Created again from its directory, it recovers and catches up.
    let storage = open(&h.root.join(third.as_str()).join("1")).await;
    let node = h.hosts[&third]
        .create_group(1, config(), storage, Counter::default(), None)
        .await
        .expect("group 1 starts again");
    h.groups.insert((1, third.clone()), node);
    h.converge(1, 7).await;
    for host in h.hosts.values() {
        host.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t90_every_host_killed_then_every_group_recovers_what_it_acknowledged() {
    let mut h: Hosts = Hosts::start(3).await;
    let all = ids(3);
    let groups: Vec<GroupId> = (1..=8).collect();
    for &g in &groups {
        h.create(g, &all).await;
    }
    // Writes to all groups at once, so the shared log writer has many groups' appends
    // in each round.
    let mut acked = BTreeMap::new();
    {
        let h = &h;
        let writes = groups.iter().map(|&g| async move { (g, h.write(g, 1, 10).await) });
        for (g, n) in futures_util::future::join_all(writes).await {
            acked.insert(g, n);
        }
    }
    // A crash of every node of every group: nothing flushed on the way out.
    for node in h.groups.values() {
        node.kill().await;
    }
    h.groups.clear();
    let old: Vec<Host<FileStorage>> = std::mem::take(&mut h.hosts).into_values().collect();
    drop(old);
    for id in &all {
        h.start_host(id).await;
    }
    for &g in &groups {
        for id in &all {
            let storage = open(&h.root.join(id.as_str()).join(g.to_string())).await;
            let node = h.hosts[id]
                .create_group(g, config(), storage, Counter::default(), None)
                .await
                .expect("group recovers");
            h.groups.insert((g, id.clone()), node);
        }
    }
    for &g in &groups {
        let leader = h.leader(g).await;
        let value = leader.read(()).await.expect("a read after recovery");
        assert!(value >= acked[&g], "group {g}: {value} < {} acknowledged", acked[&g]);
    }
    for host in h.hosts.values() {
        host.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t90_groups_on_one_shared_log_per_host_share_its_fsyncs_and_recover() {
    let mut h: Hosts<GroupLog> = Hosts::start(3).await;
    let all = ids(3);
    let logs: BTreeMap<NodeId, MultiLog> = all
        .iter()
        .map(|id| {
            let log = MultiLog::open(h.root.join(id.as_str()), Options::default().segment_size(64 << 10));
            (id.clone(), log.expect("the shared log opens"))
        })
        .collect();
    let groups: Vec<GroupId> = (1..=8).collect();
    for &g in &groups {
        h.create_with(g, &all, |id| logs[id].group(g).expect("a group's log"))
            .await;
    }
    let mut acked = BTreeMap::new();
    {
        let h = &h;
        let writes = groups.iter().map(|&g| async move { (g, h.write(g, 1, 20).await) });
        for (g, n) in futures_util::future::join_all(writes).await {
            acked.insert(g, n);
        }
    }
    // Every group's writes on a host went to its one log; with 8 groups writing at
    // once, one fdatasync made several groups' writes durable.
    for id in &all {
        let persists: u64 = h.members_on(id).iter().map(|n| n.metrics().persists).sum();
        let syncs = logs[id].stats().syncs;
        assert!(persists > 0, "{id} wrote");
        assert!(
            syncs < persists,
            "{id}: {syncs} fdatasyncs for {persists} group writes: the groups did not share them"
        );
    }
    // A crash of every node of every group, then each host's one log reopened.
    for node in h.groups.values() {
        node.kill().await;
    }
    h.groups.clear();
    let old: Vec<Host<GroupLog>> = std::mem::take(&mut h.hosts).into_values().collect();
    drop(old);
    drop(logs);
    for id in &all {
        h.start_host(id).await;
    }
    let mut logs = BTreeMap::new();
    for id in &all {
        let path = h.root.join(id.as_str());
        let mut log = None;
        for _ in 0..300 {
            match MultiLog::open(&path, Options::default().segment_size(64 << 10)) {
                Ok(l) => {
                    log = Some(l);
                    break;
                }
                // A killed incarnation may still hold the directory's lock a moment.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        let log = log.expect("the shared log reopens");
        assert_eq!(log.groups(), groups, "{id} recovers every group");
        logs.insert(id.clone(), log);
    }
    for &g in &groups {
        for id in &all {
            let node = h.hosts[id]
                .create_group(
                    g,
                    config(),
                    logs[id].group(g).expect("a group's log"),
                    Counter::default(),
                    None,
                )
                .await
                .expect("group recovers");
            h.groups.insert((g, id.clone()), node);
        }
    }
    for &g in &groups {
        let value = h.leader(g).await.read(()).await.expect("a read after recovery");
        assert!(value >= acked[&g], "group {g}: {value} < {} acknowledged", acked[&g]);
    }
    for host in h.hosts.values() {
        host.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t90_idle_groups_go_quiet_and_a_dead_leaders_groups_elect_again() {
    let mut h: Hosts = Hosts::start(3).await;
    let all = ids(3);
    let groups: Vec<GroupId> = (1..=24).collect();
    for &g in &groups {
        h.create(g, &all).await;
    }
    for &g in &groups {
        assert_eq!(h.write(g, 1, 1).await, 1);
    }
    wait_until("every group to quiesce on every host", || {
        h.groups.values().all(|n| n.view().quiesced)
    })
    .await;
    // Quiet: over 20 ticks only the hosts' liveness beats flow (one per peer pair
    // and tick: 6 a tick for 3 hosts), not 24 groups' heartbeats and answers (96).
    let messages = h.messages.load(Ordering::Relaxed);
    tokio::time::sleep(config().heartbeat_interval * 20).await;
    let messages = h.messages.load(Ordering::Relaxed) - messages;
    assert!(
        messages <= 6 * 30,
        "{messages} messages in 20 ticks of 24 quiesced groups: they are not quiet"
    );
    assert!(h.groups.values().all(|n| n.view().quiesced), "nothing woke them");

    // A write wakes its group, and commits.
    assert_eq!(h.write(5, 1, 1).await, 1);
    h.converge(5, 2).await;

    // The host that leads the most groups dies: its groups elect new leaders among
    // the other two, woken by the silence of its beats, and take writes again.
    let mut leads: BTreeMap<NodeId, Vec<GroupId>> = BTreeMap::new();
    for &g in &groups {
        leads.entry(h.leader(g).await.id().clone()).or_default().push(g);
    }
    let (victim, led) = leads.into_iter().max_by_key(|(_, g)| g.len()).expect("a leader");
    for ((_, id), node) in &h.groups {
        if *id == victim {
            node.kill().await;
        }
    }
    h.groups.retain(|(_, id), _| *id != victim);
    if let Some(host) = h.hosts.remove(&victim) {
        host.shutdown().await;
    }
    for &g in &led {
        let leader = h.leader(g).await;
        assert_ne!(leader.id(), &victim);
        assert_eq!(h.write(g, 1, 1).await, 1, "group {g} takes writes again");
    }
    for host in h.hosts.values() {
        host.shutdown().await;
    }
}
