//! The kinds of fault a chaos run injects ([`Fault`], as named on the command line)
//! and the record of one that happened ([`FaultEvent`]). How each is injected and
//! healed is in `inject`.

use std::fmt;
use std::time::Duration;

/// A kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// SIGKILL a node (the leader or another), then restart it on the same data
    /// directory and port.
    Kill,
    /// SIGSTOP a node (a GC pause, a stalled VM), then SIGCONT it.
    Pause,
    /// Cut a minority (or the leader alone) off from the others, then heal.
    Partition,
    /// Make some links lose a fraction of their packets for a while (see
    /// [`crate::relay`] for what that means for the relayed TCP connections).
    Loss,
    /// Cut one direction of a link (or every link into or out of one node): `a`'s
    /// connections to `b` fail, `b`'s connections to `a` pass.
    OneWay,
    /// Restart a node with its clock running fast or slow (`--clock-rate`), then,
    /// after a while, with an exact clock again.
    Skew,
    /// Membership churn in the background: a new node (new id, port and data
    /// directory) is added as a learner, caught up, then promoted while a voter (maybe
    /// the leader) is removed in the same joint change; the removed node is stopped
    /// and its data deleted. Sometimes the learner stays a learner until the next
    /// churn promotes it.
    Churn,
    /// Every fsync of a node fails with EIO from now on: the node must stop (it
    /// cannot know what reached the disk); it is restarted on the same data directory.
    DiskEio,
    /// Every write of a node fails with ENOSPC after writing half its bytes: the node
    /// must stop; it is restarted on the same data directory (the space "freed").
    DiskFull,
    /// Every fsync of a node takes seconds longer for a while.
    DiskSlow,
}

impl Fault {
    /// Every kind.
    pub const ALL: [Fault; 10] = [
        Fault::Kill,
        Fault::Pause,
        Fault::Partition,
        Fault::Loss,
        Fault::OneWay,
        Fault::Skew,
        Fault::Churn,
        Fault::DiskEio,
        Fault::DiskFull,
        Fault::DiskSlow,
    ];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Kill => "kill",
            Fault::Pause => "pause",
            Fault::Partition => "partition",
            Fault::Loss => "loss",
            Fault::OneWay => "one-way",
            Fault::Skew => "skew",
            Fault::Churn => "churn",
            Fault::DiskEio => "disk-eio",
            Fault::DiskFull => "disk-full",
            Fault::DiskSlow => "disk-slow",
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Fault {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Fault::ALL.into_iter().find(|f| f.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Fault::ALL.iter().map(|f| f.name()).collect();
            format!("unknown fault {s:?} ({})", names.join(", "))
        })
    }
}

/// One fault that happened.
#[derive(Clone, Debug)]
pub struct FaultEvent {
    /// The kind.
    pub fault: Fault,
    /// When it started, since the run started.
    pub at: Duration,
    /// How long it lasted.
    pub held: Duration,
    /// What was done, in words.
    pub what: String,
    /// Something went wrong that the history check cannot see (a node that kept
    /// running on a failed disk, a membership change that never completed).
    pub anomaly: Option<String>,
}
