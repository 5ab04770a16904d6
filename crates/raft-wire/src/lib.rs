//! # raft-wire
//!
//! easyraft's wire formats (being split into modules of one idea each).
#![warn(missing_docs, unreachable_pub)]

mod binary;
mod json;

pub use binary::*;
pub use json::{from_payload, to_payload, PayloadError};
