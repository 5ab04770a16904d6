//! A service registry: instances of a service register an address with a lease (TTL)
//! and keep it alive with heartbeats; clients list the live instances of a service or
//! pick one for a key by consistent hashing (rendezvous hashing: the instance with the
//! highest hash of key and instance id), so a key keeps going to the same instance
//! while it lives, and only the keys of an instance that leaves move.
//!
//! Time comes from the log, as in [`crate::lock`]: each write carries the stamping
//! node's clock (`now_ms`) and the state machine keeps the highest stamp as "now", so
//! every replica expires the same instances. A read also passes the reading node's
//! clock, so an instance whose lease ran out is not listed even when no write has
//! advanced the log's time since.
//!
//! The pieces: the state machine with its commands and answers (`machine`), the
//! consistent hashing that picks an instance for a key (`rendezvous`), and the
//! JSON-RPC API (`rpc`).

mod machine;
mod rendezvous;
mod rpc;

#[cfg(test)]
mod tests;

pub use machine::{
    Instance, Registry, RegistryAnswer, RegistryCommand, RegistryQuery, RegistryResult, MAX_INSTANCES, MAX_TTL_MS,
};
pub use rendezvous::rendezvous;
pub use rpc::{rpc, rpc_for};
