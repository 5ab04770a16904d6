//! `cargo xtask chaos`: the whole-system chaos test.

pub mod check;
pub mod history;
