//! Exactly-once client sessions for any state machine (Raft thesis §6.3); see `table`.

mod table;

pub use table::*;
