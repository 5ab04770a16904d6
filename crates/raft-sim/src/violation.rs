//! What the checker reports: the property broken, when, and how.

use std::fmt;

/// A property the checker verifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Property {
    /// At most one leader per term.
    ElectionSafety,
    /// A leader never overwrites or deletes entries in its log during its term.
    LeaderAppendOnly,
    /// Same index and term means the same entry and the same log before it.
    LogMatching,
    /// Committed entries are in the logs of all later leaders.
    LeaderCompleteness,
    /// Nodes apply the same entries at the same indexes, in order, once; snapshots
    /// hold exactly the committed prefix.
    StateMachineSafety,
    /// A read reflects every write committed before it began.
    LinearizableReads,
    /// After the faults stop, a leader is elected and proposals commit in bounded time.
    Liveness,
    /// The core broke its own API contract (a malformed Ready, a log that differs
    /// from what it asked the driver to persist, an error on valid input).
    Contract,
}

impl fmt::Display for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A broken property, where and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Which property.
    pub property: Property,
    /// The simulation step (tick) it was detected at.
    pub step: u64,
    /// What exactly went wrong.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} violated at step {}: {}", self.property, self.step, self.detail)
    }
}

impl std::error::Error for Violation {}
