//! Planted bugs: switches that break one rule of Raft on purpose. They exist only with
//! the `sim` feature, so that tests can show the simulator's checker catches each
//! violation. Never enable them outside such a test.

/// Which bugs to plant in a node. All off by default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlantedBugs {
    /// Grant a vote even when this node already voted for someone else in the term
    /// (breaks Election Safety).
    pub vote_twice: bool,
    /// Commit an entry of a previous term by counting replicas (the Figure 8 bug).
    pub commit_previous_term_by_counting: bool,
    /// Accept AppendEntries without checking that `prev_log_index/prev_log_term`
    /// match (breaks Log Matching).
    pub skip_log_matching_check: bool,
    /// Send a vote before the vote is persisted, so a crash can make the node vote
    /// again in the same term.
    pub vote_before_persist: bool,
    /// Switch voters directly to the new configuration, without the joint phase, and
    /// allow a new change while one is in flight.
    pub skip_joint_consensus: bool,
    /// Let a configuration take effect when committed instead of when appended.
    pub apply_config_on_commit: bool,
    /// Ask learners for votes and count them in elections.
    pub count_learner_votes: bool,
    /// Install a snapshot even when it is older than the follower's commit index.
    pub install_stale_snapshot: bool,
    /// The driver ([`crate::ReadyDriver`]) sends a Ready's `persisted_messages`
    /// (append acknowledgements, votes) as soon as its write is queued instead of
    /// once it is durable, so a crash before the write completes loses what was
    /// acknowledged.
    pub ack_before_persist: bool,
}
