//! The hosts' liveness beats, which detect failures for every quiesced group at once
//! (the rules of docs/raft-core.md's "Quiescence", modelled in raft-sim's
//! `liveness.rs`):
//!
//! 1. every tick, the host sends every peer host one beat (a message of
//!    [`LIVENESS_GROUP`]);
//! 2. a peer is *silent* once no beat came from it for `HostOptions::liveness_timeout`;
//! 3. while a peer is silent, every quiesced group it leads here is woken (its
//!    followers then elect a new leader unless the old one speaks);
//! 4. when a peer *becomes* silent, every quiesced group this host leads is woken (it
//!    heartbeats, and steps down by check-quorum if it lost its quorum);
//! 5. a peer seen for the first time counts as just heard (after a restart too);
//! 6. a beat carries its host's epoch, bumped whenever a group stops there (removed,
//!    or its node stopped): when a peer's epoch changes, every quiesced group it
//!    leads here is woken, since the leader may be the group that stopped while its
//!    host lives on.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use raft_core::{Heartbeat, Message, MessageBody, NodeId, Role};

use super::mux::PeerMux;
use super::GroupControl;
use crate::transport::{GroupRoutes, Transport, LIVENESS_GROUP};

/// What the host remembers between ticks.
pub(super) struct Liveness {
    me: NodeId,
    timeout: Duration,
    /// When each peer was first seen (rule 5: it counts as heard then).
    seen: HashMap<NodeId, Instant>,
    /// The peers silent at the last tick.
    silent: BTreeSet<NodeId>,
    /// The epoch each peer's beats carried at the last tick.
    epochs: HashMap<NodeId, u64>,
}

impl Liveness {
    pub(super) fn new(me: NodeId, timeout: Duration) -> Self {
        Liveness {
            me,
            timeout,
            seen: HashMap::new(),
            silent: BTreeSet::new(),
            epochs: HashMap::new(),
        }
    }

    /// One tick: beats out, then the wake rules over `groups`.
    pub(super) fn tick<T: Transport>(&mut self, mux: &PeerMux<T>, routes: &GroupRoutes, groups: &[&dyn GroupControl]) {
        let now = Instant::now();
        let heard = routes.heard();
        let mut peers: BTreeSet<NodeId> = mux.peers();
        peers.extend(heard.keys().cloned());
        peers.remove(&self.me);
        for peer in &peers {
            mux.post(
                peer,
                vec![Message {
                    group: LIVENESS_GROUP,
                    from: self.me.clone(),
                    to: peer.clone(),
                    term: 0,
                    // The commit field carries this host's epoch (rule 6).
                    body: MessageBody::Heartbeat(Heartbeat {
                        commit: routes.epoch(),
                        read_round: 0,
                    }),
                }],
            );
        }
        let mut silent = BTreeSet::new();
        let mut changed = BTreeSet::new();
        for peer in peers {
            let first = *self.seen.entry(peer.clone()).or_insert(now);
            let beat = heard.get(&peer).copied();
            let last = beat.map_or(first, |(h, _)| h.max(first));
            if now.saturating_duration_since(last) > self.timeout {
                silent.insert(peer.clone());
            }
            if let Some((_, epoch)) = beat {
                if self.epochs.insert(peer.clone(), epoch).is_some_and(|was| was != epoch) {
                    changed.insert(peer);
                }
            }
        }
        let newly_silent = silent.iter().any(|p| !self.silent.contains(p));
        for group in groups {
            let view = group.view();
            if !view.quiesced {
                continue;
            }
            let leader_silent = view
                .leader
                .as_ref()
                .is_some_and(|l| silent.contains(l) || changed.contains(l));
            let leading = view.role == Role::Leader;
            if leader_silent || (leading && newly_silent) {
                group.wake();
            }
        }
        self.silent = silent;
    }
}
