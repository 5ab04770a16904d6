//! Small ready-made pieces for tests, benches and examples of code built on
//! easyraft (together with [`MemNetwork`](crate::MemNetwork) and
//! [`FaultyTransport`](crate::FaultyTransport)).

use bytes::Bytes;
use raft_core::LogIndex;

use crate::{BoxError, StateMachine};

/// The smallest useful state machine: a `u64` that every command adds to.
///
/// Applying `n` returns the new total; the query `()` reads it. It makes a test
/// or a bench measure Raft, the storage and the transport rather than an
/// application, and its value tells how many units were applied exactly once.
///
/// ```
/// use raft_cluster::testing::Counter;
/// use raft_cluster::StateMachine;
///
/// let mut c = Counter::default();
/// assert_eq!(c.apply(1, 5), 5);
/// assert_eq!(c.apply(2, 2), 7);
/// let snap = c.snapshot().unwrap();
/// let mut restored = Counter::default();
/// restored.restore(&snap).unwrap();
/// assert_eq!(restored.query(()), 7);
/// assert!(restored.restore(b"short").is_err());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counter(pub u64);

impl StateMachine for Counter {
    type Command = u64;
    type Response = u64;
    type Query = ();
    type QueryResponse = u64;

    fn apply(&mut self, _index: LogIndex, add: u64) -> u64 {
        self.0 = self.0.wrapping_add(add);
        self.0
    }

    fn query(&self, _: ()) -> u64 {
        self.0
    }

    fn snapshot(&self) -> Result<Bytes, BoxError> {
        Ok(Bytes::copy_from_slice(&self.0.to_be_bytes()))
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), BoxError> {
        self.0 = u64::from_be_bytes(data.try_into()?);
        Ok(())
    }
}
