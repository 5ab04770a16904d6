//! The error every task ends with when it cannot finish: a demo, the chaos test, a
//! bench comparison.

/// Any error that ends a task early.
pub type TaskError = Box<dyn std::error::Error + Send + Sync>;
