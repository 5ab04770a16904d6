//! The small value types every other module speaks in: node ids, terms, indexes,
//! hard state, membership and roles.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A Raft term (§5.1). Terms start at 0 on a fresh node and only grow.
pub type Term = u64;

/// A position in the replicated log. The first real entry has index 1; index 0 is the
/// empty prefix every log agrees on.
pub type LogIndex = u64;

/// The id of a node, such as `"node1"` or a DNS name. Cloning is a reference-count
/// increment, so ids can be passed around freely.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(Arc<str>);

impl NodeId {
    /// Creates an id from any string.
    pub fn new(id: impl AsRef<str>) -> Self {
        NodeId(Arc::from(id.as_ref()))
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for NodeId {
    fn from(s: &str) -> Self {
        NodeId::new(s)
    }
}

impl From<String> for NodeId {
    fn from(s: String) -> Self {
        NodeId(Arc::from(s))
    }
}

impl AsRef<str> for NodeId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for NodeId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl Serialize for NodeId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for NodeId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(NodeId::from(s))
    }
}

/// The state a node must persist before it sends the messages that depend on it
/// (see the persistence contract in the crate docs).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    /// The latest term this node has seen.
    pub term: Term,
    /// The candidate this node voted for in `term`, if any.
    pub vote: Option<NodeId>,
    /// The highest log index known to be committed. Persisting it is an optimisation
    /// (a restarted node can apply sooner); it is never needed for safety.
    pub commit: LogIndex,
}

/// Who takes part in the cluster: voters decide elections and commits, learners only
/// receive the log.
///
/// `voters_outgoing` is non-empty only during a joint-consensus membership change
/// (§6 of the paper): then every decision needs a majority of `voters` *and* a
/// majority of `voters_outgoing`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// The voters of the (incoming) configuration.
    pub voters: BTreeSet<NodeId>,
    /// The voters of the outgoing configuration while a joint change is in flight.
    pub voters_outgoing: BTreeSet<NodeId>,
    /// Non-voting members that receive the log.
    pub learners: BTreeSet<NodeId>,
}

impl Membership {
    /// A configuration of the given voters and no learners.
    pub fn with_voters<I, N>(voters: I) -> Self
    where
        I: IntoIterator<Item = N>,
        N: Into<NodeId>,
    {
        Membership {
            voters: voters.into_iter().map(Into::into).collect(),
            ..Membership::default()
        }
    }

    /// Whether `id` is a voter in either half of the configuration.
    pub fn is_voter(&self, id: &NodeId) -> bool {
        self.voters.contains(id) || self.voters_outgoing.contains(id)
    }

    /// Whether `id` is a member at all (voter or learner).
    pub fn contains(&self, id: &NodeId) -> bool {
        self.is_voter(id) || self.learners.contains(id)
    }

    /// The voters of both halves of the configuration, each once.
    pub fn all_voters(&self) -> BTreeSet<NodeId> {
        self.voters.union(&self.voters_outgoing).cloned().collect()
    }

    /// Every member, voters first, each once.
    pub fn members(&self) -> BTreeSet<NodeId> {
        self.voters
            .iter()
            .chain(&self.voters_outgoing)
            .chain(&self.learners)
            .cloned()
            .collect()
    }

    /// Whether a joint-consensus change is in flight.
    pub fn is_joint(&self) -> bool {
        !self.voters_outgoing.is_empty()
    }
}

/// The role of a node (§5.1, plus the pre-candidate of the dissertation's §9.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Follows a leader, or waits for one.
    Follower,
    /// Asking for pre-votes: would a majority vote for it, without bumping the term?
    PreCandidate,
    /// Asking for votes in a new term.
    Candidate,
    /// Handles proposals and replicates the log.
    Leader,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Follower => "follower",
            Role::PreCandidate => "pre-candidate",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
        })
    }
}

/// Volatile state that a driver may want to observe (never needs persisting).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SoftState {
    /// The node's role.
    pub role: Role,
    /// The leader this node currently knows of.
    pub leader: Option<NodeId>,
    /// The current term (also in the hard state; repeated so an observer of role
    /// changes sees the term they happened in).
    pub term: Term,
    /// With [`crate::Config::quiesce`]: the node is quiesced ([`crate::RawNode::is_quiesced`]),
    /// so the host may stop ticking it until it wakes. Always false without it.
    pub quiesced: bool,
}
