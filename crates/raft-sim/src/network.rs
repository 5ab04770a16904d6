//! The simulated network: one queue of messages in flight, ordered by delivery time
//! and a random tie-breaker, with per-message faults (drop, delay, duplicate, and the
//! reordering that delays cause) and directed link cuts (symmetric partitions,
//! one-way cuts, an isolated node). Nodes are numbered `0..n`; every random choice
//! comes from the network's own seeded RNG (the simulator seeds it from its own), so
//! a run replays exactly.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeSet, BinaryHeap};
use std::fmt;

use raft_core::Message;

use crate::RngExt;
use raft_core::Rng;

/// What the network does to each message, in parts per thousand.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetFaults {
    /// Chance that a message is lost.
    pub drop_per_mille: u32,
    /// Chance that a message is delivered twice (each copy with its own delay).
    pub dup_per_mille: u32,
    /// Chance that a message is delayed at all; the others arrive within the tick.
    pub delay_per_mille: u32,
    /// The largest delay, in ticks.
    pub max_delay: u64,
}

impl NetFaults {
    /// A perfect network: nothing lost, duplicated or delayed.
    pub fn none() -> Self {
        NetFaults::default()
    }
}

impl fmt::Display for NetFaults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "drop={}‰ dup={}‰ delay={}‰<={}t",
            self.drop_per_mille, self.dup_per_mille, self.delay_per_mille, self.max_delay
        )
    }
}

/// Counters of what the network did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Messages handed to the network.
    pub sent: u64,
    /// Messages handed to their receiver.
    pub delivered: u64,
    /// Messages lost to the drop rate.
    pub dropped: u64,
    /// Messages lost to a cut link.
    pub cut: u64,
    /// Extra copies made.
    pub duplicated: u64,
}

/// A message in flight, ordered by `(at, key, seq)`.
struct InFlight {
    at: u64,
    key: u64,
    seq: u64,
    from: usize,
    to: usize,
    msg: Message,
}

impl InFlight {
    fn order(&self) -> (u64, u64, u64) {
        (self.at, self.key, self.seq)
    }
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        self.order() == other.order()
    }
}

impl Eq for InFlight {}

impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> Ordering {
        self.order().cmp(&other.order())
    }
}

/// What happened to a message handed to [`Network::send`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendFate {
    /// Queued (`copies` is 2 when duplicated).
    Queued {
        /// How many copies are in flight.
        copies: u8,
    },
    /// Lost to the drop rate.
    Dropped,
    /// Lost to a cut link.
    Cut,
}

/// A seeded network between `n` nodes.
pub struct Network {
    n: usize,
    rng: Rng,
    faults: NetFaults,
    queue: BinaryHeap<Reverse<InFlight>>,
    /// Directed links that lose everything: `(from, to)`.
    cut: BTreeSet<(usize, usize)>,
    seq: u64,
    stats: NetStats,
}

impl Network {
    /// A fully connected network of `n` nodes with the given faults; `seed` drives
    /// its random choices.
    pub fn new(n: usize, faults: NetFaults, seed: u64) -> Self {
        Network {
            n,
            rng: Rng::new(seed),
            faults,
            queue: BinaryHeap::new(),
            cut: BTreeSet::new(),
            seq: 0,
            stats: NetStats::default(),
        }
    }

    /// Changes the per-message faults (e.g. none once the fault phase ends).
    pub fn set_faults(&mut self, faults: NetFaults) {
        self.faults = faults;
    }

    /// The per-message faults in effect.
    pub fn faults(&self) -> NetFaults {
        self.faults
    }

    /// What the network did so far.
    pub fn stats(&self) -> NetStats {
        self.stats
    }

    /// Messages in flight.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    /// Hands a message from node `from` to node `to` to the network at time `now`.
    pub fn send(&mut self, now: u64, from: usize, to: usize, msg: Message) -> SendFate {
        self.stats.sent += 1;
        if self.is_cut(from, to) {
            self.stats.cut += 1;
            return SendFate::Cut;
        }
        if self.rng.chance(self.faults.drop_per_mille) {
            self.stats.dropped += 1;
            return SendFate::Dropped;
        }
        let dup = self.rng.chance(self.faults.dup_per_mille);
        if dup {
            self.stats.duplicated += 1;
            let copy = msg.clone();
            self.enqueue(now, from, to, copy);
        }
        self.enqueue(now, from, to, msg);
        SendFate::Queued {
            copies: if dup { 2 } else { 1 },
        }
    }

    fn enqueue(&mut self, now: u64, from: usize, to: usize, msg: Message) {
        let delay = if self.rng.chance(self.faults.delay_per_mille) {
            self.rng.range(1, self.faults.max_delay + 1)
        } else {
            0
        };
        let key = self.rng.next_u64();
        self.push(now + delay, key, from, to, msg);
    }

    fn push(&mut self, at: u64, key: u64, from: usize, to: usize, msg: Message) {
        self.seq += 1;
        self.queue.push(Reverse(InFlight {
            at,
            key,
            seq: self.seq,
            from,
            to,
            msg,
        }));
    }

    /// Takes the next message due at or before `now`: `(from, to, message)`. Messages
    /// due at the same time come out in a random order.
    pub fn pop_due(&mut self, now: u64) -> Option<(usize, usize, Message)> {
        if self.queue.peek().is_some_and(|Reverse(m)| m.at <= now) {
            let Reverse(m) = self.queue.pop()?;
            self.stats.delivered += 1;
            return Some((m.from, m.to, m.msg));
        }
        None
    }

    /// Puts a message back to arrive at `at` (its receiver is paused).
    pub fn hold(&mut self, at: u64, from: usize, to: usize, msg: Message) {
        self.stats.delivered -= 1;
        let key = self.rng.next_u64();
        self.push(at, key, from, to, msg);
    }

    /// Whether the directed link `from -> to` is cut.
    pub fn is_cut(&self, from: usize, to: usize) -> bool {
        !self.cut.is_empty() && self.cut.contains(&(from, to))
    }

    /// Whether any link is cut.
    pub fn is_partitioned(&self) -> bool {
        !self.cut.is_empty()
    }

    /// Cuts the directed link `from -> to`.
    pub fn cut_one_way(&mut self, from: usize, to: usize) {
        if from != to {
            self.cut.insert((from, to));
        }
    }

    /// Cuts both directions between `a` and `b`.
    pub fn cut_both_ways(&mut self, a: usize, b: usize) {
        self.cut_one_way(a, b);
        self.cut_one_way(b, a);
    }

    /// A symmetric partition: cuts every link between nodes of different groups.
    /// `group[i]` is node `i`'s group.
    pub fn partition(&mut self, group: &[usize]) {
        for a in 0..self.n {
            for b in 0..self.n {
                if group.get(a) != group.get(b) {
                    self.cut_one_way(a, b);
                }
            }
        }
    }

    /// Cuts `node` off from everyone, both ways.
    pub fn isolate(&mut self, node: usize) {
        for other in 0..self.n {
            self.cut_both_ways(node, other);
        }
    }

    /// Restores every link. Messages already lost stay lost.
    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// The cut links, e.g. `0->1 1->0 2->0`.
    pub fn describe_cuts(&self) -> String {
        let parts: Vec<String> = self.cut.iter().map(|(a, b)| format!("{a}->{b}")).collect();
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_core::{MessageBody, MessageBody::TimeoutNow};

    fn msg(i: u64) -> Message {
        Message {
            group: 0,
            from: "a".into(),
            to: "b".into(),
            term: i,
            body: TimeoutNow,
        }
    }

    fn drain(net: &mut Network, now: u64) -> Vec<u64> {
        let mut out = Vec::new();
        while let Some((_, _, m)) = net.pop_due(now) {
            assert!(matches!(m.body, MessageBody::TimeoutNow));
            out.push(m.term);
        }
        out
    }

    #[test]
    fn same_seed_same_deliveries_and_cuts_lose_messages() {
        let faults = NetFaults {
            drop_per_mille: 100,
            dup_per_mille: 100,
            delay_per_mille: 500,
            max_delay: 3,
        };
        let run = |seed| {
            let mut net = Network::new(3, faults, seed);
            net.cut_one_way(2, 0);
            let mut seen = Vec::new();
            for now in 0..50 {
                net.send(now, 0, 1, msg(now));
                assert_eq!(net.send(now, 2, 0, msg(now)), SendFate::Cut);
                seen.push(drain(&mut net, now));
            }
            seen.push(drain(&mut net, 100));
            (seen, net.stats())
        };
        let (a, stats) = run(7);
        assert_eq!(a, run(7).0);
        assert_ne!(a, run(8).0);
        assert_eq!(stats.cut, 50);
        let delivered: usize = a.iter().map(Vec::len).sum();
        assert_eq!(delivered as u64, 50 - stats.dropped + stats.duplicated);
    }

    #[test]
    fn partition_cuts_only_links_across_groups() {
        let mut net = Network::new(4, NetFaults::none(), 1);
        net.partition(&[0, 0, 1, 1]);
        assert!(!net.is_cut(0, 1) && !net.is_cut(3, 2));
        assert!(net.is_cut(0, 2) && net.is_cut(2, 0) && net.is_cut(1, 3));
        net.heal();
        assert!(!net.is_partitioned());
        net.isolate(1);
        assert!(net.is_cut(1, 0) && net.is_cut(3, 1) && !net.is_cut(0, 3));
    }
}
