//! The layout of the state machine's snapshot: each part's own snapshot, in the
//! layout of this release, and those of older releases that are still read.

use easyraft::BoxError;
use examples::api::decode;
use serde::{Deserialize, Serialize};

use crate::directory::Members;

/// The snapshot: each part's own snapshot.
#[derive(Serialize, Deserialize)]
pub(super) struct Parts {
    pub(super) kv: Vec<u8>,
    pub(super) lock: Vec<u8>,
    pub(super) config: Vec<u8>,
    pub(super) directory: Members,
    pub(super) registry: Vec<u8>,
    pub(super) queue: Vec<u8>,
    pub(super) sessions: Vec<u8>,
}

/// The snapshot of a release with the registry but without the queue and sessions,
/// still read (restored with an empty queue and no session open).
#[derive(Deserialize)]
struct PartsV2 {
    kv: Vec<u8>,
    lock: Vec<u8>,
    config: Vec<u8>,
    directory: Members,
    registry: Vec<u8>,
}

impl From<PartsV2> for Parts {
    fn from(p: PartsV2) -> Parts {
        Parts {
            kv: p.kv,
            lock: p.lock,
            config: p.config,
            directory: p.directory,
            registry: p.registry,
            queue: Vec::new(),
            sessions: Vec::new(),
        }
    }
}

/// The snapshot of a release without the registry, still read (an upgrade restores it
/// with an empty registry).
#[derive(Deserialize)]
struct PartsV1 {
    kv: Vec<u8>,
    lock: Vec<u8>,
    config: Vec<u8>,
    directory: Members,
}

impl From<PartsV1> for Parts {
    fn from(p: PartsV1) -> Parts {
        Parts {
            kv: p.kv,
            lock: p.lock,
            config: p.config,
            directory: p.directory,
            registry: Vec::new(),
            queue: Vec::new(),
            sessions: Vec::new(),
        }
    }
}

/// Reads a snapshot in any layout still read, newest first: an older, shorter one fails
/// to read as a newer one. The newest layout's error if none reads.
pub(super) fn decode_parts(data: &[u8]) -> Result<Parts, BoxError> {
    match decode(data) {
        Ok(p) => Ok(p),
        Err(e) => match decode::<PartsV2>(data) {
            Ok(p) => Ok(p.into()),
            Err(_) => decode::<PartsV1>(data).map(Parts::from).map_err(|_| e),
        },
    }
}
