//! Planted bugs: switches that break one rule of Raft on purpose, so that raft-sim's
//! tests can show the simulator's checker catches each violation. They reach a node
//! through [`crate::Config::bugs`] (the only way in: [`crate::ReadyDriver`] reads its
//! switch from the node it drives) and are consulted where the rule is enforced, each
//! by a one-line check. All are off by default; for the simulator's self-test
//! only, never set in production.

/// Which bugs to plant in a node. All off by default. For the simulator's self-test
/// only: never set in production.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlantedBugs {
    /// Grant a vote even when this node already voted for someone else in the term
    /// (breaks Election Safety: at most one vote per term, §5.2).
    pub vote_twice: bool,
    /// Commit an entry of a previous term by counting replicas (the Figure 8 bug:
    /// breaks Leader Completeness, §5.4.2).
    pub commit_previous_term_by_counting: bool,
    /// Accept AppendEntries without checking that `prev_log_index/prev_log_term`
    /// match (breaks Log Matching, §5.3).
    pub skip_log_matching_check: bool,
    /// Send a vote before the vote is persisted, so a crash can make the node vote
    /// again in the same term (breaks Election Safety: the vote must be durable
    /// before it is sent).
    pub vote_before_persist: bool,
    /// Switch voters directly to the new configuration, without the joint phase, and
    /// allow a new change while one is in flight (breaks the safety of membership
    /// changes, dissertation §4.1 and §4.3: two disjoint majorities can elect).
    pub skip_joint_consensus: bool,
    /// Let a configuration take effect when committed instead of when appended
    /// (breaks the rule that a server uses the latest configuration in its log,
    /// dissertation §4.1).
    pub apply_config_on_commit: bool,
    /// Ask learners for votes and count them in elections (breaks Election Safety:
    /// only voters elect).
    pub count_learner_votes: bool,
    /// Install a snapshot even when it is older than the follower's commit index
    /// (breaks State Machine Safety: committed entries are rolled back).
    pub install_stale_snapshot: bool,
    /// The driver ([`crate::ReadyDriver`]) sends a Ready's `persisted_messages`
    /// (append acknowledgements, votes) as soon as its write is queued instead of
    /// once it is durable, so a crash before the write completes loses what was
    /// acknowledged (breaks the rule that a reply promises durable state: Leader
    /// Completeness).
    pub ack_before_persist: bool,
    /// With [`crate::Config::quiesce`] and lease reads: keep the leader's lease when it
    /// quiesces and when it wakes, so after a quiescence (during which its ticks did
    /// not count) it serves lease reads on acknowledgements that may be long stale
    /// (breaks linearizable reads).
    pub keep_lease_across_quiescence: bool,
}
