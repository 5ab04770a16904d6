//! The host's node-level liveness, for groups with `Config::quiesce`: the model a
//! multi-raft runtime copies. A quiesced group sends no heartbeats, so the host
//! detects dead peers for all its groups at once:
//!
//! 1. **Beat.** Every tick, every running node sends one small liveness beat to
//!    every peer (one per peer pair per tick, however many groups they share). A
//!    beat travels like any message: lost on a cut link, to the network's drop
//!    rate, by a crashed or paused sender or receiver. Here beats are not Raft
//!    messages and do not go through [`crate::Network`]'s queue or its statistics
//!    (they are always on time; a late beat is a lost beat).
//! 2. **Silence.** A node considers peer X silent once it has heard no beat from X
//!    for an election timeout (`Config::election_tick` ticks of its own).
//! 3. **Wake a follower.** On every tick that X is silent, the node calls
//!    `RawNode::wake` on each quiesced group whose known leader is X: that group's
//!    election timer restarts, and it elects a new leader unless X speaks up.
//! 4. **Wake a leader.** When a peer *becomes* silent (once per silence), the node
//!    calls `RawNode::wake` on each quiesced group it leads that has X as a member:
//!    the leader heartbeats and runs check-quorum again, stepping down if it lost
//!    its quorum.
//! 5. **Restart.** A host that restarts forgets what it heard: every peer counts as
//!    heard at the restart.
//!
//! The host stops ticking a group while it is quiesced (`RawNode::is_quiesced`) and
//! ticks it again once it wakes; the simulator does the same.

use raft_core::Rng;

use crate::RngExt;

/// What one node's host heard from its peers.
#[derive(Clone, Debug)]
struct Heard {
    /// The last tick each peer's beat arrived.
    at: Vec<u64>,
    /// Whether each peer is silent now (rule 2), to see it become silent (rule 4).
    silent: Vec<bool>,
}

/// Counters of the liveness model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LivenessStats {
    /// Beats sent (one per running node pair and tick).
    pub beats_sent: u64,
    /// Beats that arrived.
    pub beats_delivered: u64,
    /// `wake` calls on followers whose leader went silent (rule 3).
    pub follower_wakes: u64,
    /// `wake` calls on leaders that saw a peer go silent (rule 4).
    pub leader_wakes: u64,
    /// Ticks that a running node spent quiesced, summed over the nodes.
    pub quiesced_node_ticks: u64,
}

impl LivenessStats {
    /// Adds another run's counters to these.
    pub fn merge(&mut self, o: &LivenessStats) {
        self.beats_sent += o.beats_sent;
        self.beats_delivered += o.beats_delivered;
        self.follower_wakes += o.follower_wakes;
        self.leader_wakes += o.leader_wakes;
        self.quiesced_node_ticks += o.quiesced_node_ticks;
    }
}

/// The liveness beats of a cluster of `n` hosts.
pub(crate) struct Liveness {
    heard: Vec<Heard>,
    /// Its own stream, so that a run without quiescence draws exactly what it did.
    rng: Rng,
    pub(crate) stats: LivenessStats,
}

/// What a node's host should do about its group after this tick's beats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WakeRule {
    /// Rule 3 applies: the group's leader is silent.
    LeaderSilent,
    /// Rule 4 applies: a peer of the group's leader just went silent.
    PeerWentSilent,
}

impl Liveness {
    pub(crate) fn new(n: usize, seed: u64) -> Self {
        Liveness {
            heard: vec![
                Heard {
                    at: vec![0; n],
                    silent: vec![false; n],
                };
                n
            ],
            rng: Rng::new(seed ^ 0x11fe_bea7_0000_0001),
            stats: LivenessStats::default(),
        }
    }

    /// Rule 1: the beats of tick `now`. `can_beat(from, to)` says whether a beat can
    /// get through (both running, the link not cut); `drop_per_mille` loses some.
    pub(crate) fn exchange(&mut self, now: u64, drop_per_mille: u32, can_beat: impl Fn(usize, usize) -> bool) {
        let n = self.heard.len();
        for from in 0..n {
            for to in 0..n {
                if from == to || !can_beat(from, to) {
                    continue;
                }
                self.stats.beats_sent += 1;
                if self.rng.chance(drop_per_mille) {
                    continue;
                }
                self.stats.beats_delivered += 1;
                self.heard[to].at[from] = now;
            }
        }
    }

    /// Rules 2 to 4 for node `i` at `now`, whose group is led by `leader` (`Some(i)`
    /// if `i` leads it), with election timeout `election_tick`: which rule, if any,
    /// says to wake the group (the caller wakes it only if it is quiesced).
    pub(crate) fn rule_for(
        &mut self,
        i: usize,
        now: u64,
        election_tick: u64,
        leader: Option<usize>,
    ) -> Option<WakeRule> {
        let h = &mut self.heard[i];
        let mut went_silent = false;
        for peer in 0..h.at.len() {
            if peer == i {
                continue;
            }
            let silent = now.saturating_sub(h.at[peer]) >= election_tick;
            went_silent |= silent && !h.silent[peer];
            h.silent[peer] = silent;
        }
        match leader {
            Some(l) if l == i => went_silent.then_some(WakeRule::PeerWentSilent),
            Some(l) => h.silent[l].then_some(WakeRule::LeaderSilent),
            None => None,
        }
    }

    /// Rule 5: node `i`'s host restarted at `now`.
    pub(crate) fn restarted(&mut self, i: usize, now: u64) {
        let h = &mut self.heard[i];
        h.at.iter_mut().for_each(|t| *t = now);
        h.silent.iter_mut().for_each(|s| *s = false);
    }

    pub(crate) fn count(&mut self, rule: WakeRule) {
        match rule {
            WakeRule::LeaderSilent => self.stats.follower_wakes += 1,
            WakeRule::PeerWentSilent => self.stats.leader_wakes += 1,
        }
    }
}
