//! # easyraft-linearizability
//!
//! Checks that a recorded history of a key-value service is linearizable: each key a
//! register with `put` (answering the previous value), `get` and `cas` (compare and
//! swap, answering whether it swapped and what it found). Calls whose outcome is
//! unknown (a timeout, a lost connection) may or may not have taken effect. Any
//! service with these semantics can record its clients' calls as [`Op`]s and check
//! them; `cargo xtask chaos` does so for easyraft's kv service under faults.
//!
//! ```
//! use easyraft_linearizability::{check, Call, Op, Outcome, Ret};
//!
//! let op = |client, call, invoke, outcome| Op {
//!     client,
//!     key: "k".into(),
//!     call,
//!     invoke,
//!     outcome,
//!     final_read: false,
//! };
//! let history = vec![
//!     op(0, Call::Put { value: "a".into() }, 0, Outcome::Ok { complete: 10, ret: Ret::Put { previous: None } }),
//!     // Invoked after the put completed, this read must see it.
//!     op(1, Call::Get, 20, Outcome::Ok { complete: 30, ret: Ret::Get { value: None } }),
//! ];
//! let verdict = check(&history);
//! assert!(!verdict.passed());
//! assert_eq!(verdict.failures[0].key, "k");
//! ```
//!
//! The search and its pruning are described in [`check`](mod@check).

pub mod check;
pub mod history;

pub use check::{check, counts, explain, linearizable, Failure, Verdict, BUDGET};
pub use history::{Call, Op, Outcome, Ret};
