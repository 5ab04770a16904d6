//! The deterministic simulator (work in progress).
