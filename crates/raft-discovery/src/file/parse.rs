//! Reading a discovery file: a JSON map from node id to address, parsed with the line
//! of each key, so that an error (a node named twice among them, which serde_json would
//! let pass by keeping the last) names the file and line.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::Path;

use raft_core::NodeId;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, Visitor};

use crate::{DiscoveryError, NodeAddress};

/// Parses the JSON map, rejecting a node named twice (serde_json would
/// silently keep the last one).
pub(super) fn parse(path: &Path, text: &str) -> Result<BTreeMap<NodeId, NodeAddress>, DiscoveryError> {
    let duplicate = RefCell::new(None);
    let lines = Cell::new(0);
    // Read through a line counter, so the visitor knows the line of each key.
    let mut de = serde_json::Deserializer::from_reader(LineCounter {
        rest: text.as_bytes(),
        newlines: &lines,
    });
    let result = NodeMap {
        duplicate: &duplicate,
        newlines: &lines,
    }
    .deserialize(&mut de)
    .and_then(|map| de.end().map(|()| map));
    result.map_err(|e| match duplicate.into_inner() {
        Some((id, line)) => DiscoveryError::DuplicateNode {
            path: path.to_path_buf(),
            line,
            id,
        },
        None => DiscoveryError::InvalidFile {
            path: path.to_path_buf(),
            line: e.line(),
            column: e.column(),
            reason: strip_position(&e),
        },
    })
}

/// Hands serde_json one byte at a time, counting the newlines handed out.
struct LineCounter<'a> {
    rest: &'a [u8],
    newlines: &'a Cell<usize>,
}

impl Read for LineCounter<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match (self.rest.split_first(), buf.first_mut()) {
            (Some((&b, rest)), Some(slot)) => {
                *slot = b;
                self.rest = rest;
                if b == b'\n' {
                    self.newlines.set(self.newlines.get() + 1);
                }
                Ok(1)
            }
            _ => Ok(0),
        }
    }
}

/// serde_json's message without its " at line L column C" tail (we print our own).
fn strip_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// A map visitor that fails on a repeated key, leaving the key and its line in
/// `duplicate` so the caller can tell this error from a syntax error.
struct NodeMap<'a> {
    duplicate: &'a RefCell<Option<(NodeId, usize)>>,
    newlines: &'a Cell<usize>,
}

impl<'de> DeserializeSeed<'de> for NodeMap<'_> {
    type Value = BTreeMap<NodeId, NodeAddress>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for NodeMap<'_> {
    type Value = BTreeMap<NodeId, NodeAddress>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"a map from node id to {"host": ..., "port": ...}"#)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut map = BTreeMap::new();
        while let Some(id) = access.next_key::<String>()? {
            // The key was just read: its line is one past the newlines read so far.
            let line = self.newlines.get() + 1;
            let address: NodeAddress = access.next_value()?;
            if id.is_empty() {
                return Err(serde::de::Error::custom("empty node id"));
            }
            let id = NodeId::new(id);
            if map.contains_key(&id) {
                *self.duplicate.borrow_mut() = Some((id.clone(), line));
                return Err(serde::de::Error::custom(format_args!("node {id} is named twice")));
            }
            map.insert(id, address);
        }
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_seed_shape_and_rejects_duplicates_with_their_line() {
        let p = Path::new("cluster.json");
        let ok = parse(
            p,
            r#"{"node1": {"host": "10.0.0.1", "port": 8081}, "node2": {"host": "h", "port": 2}}"#,
        )
        .unwrap();
        assert_eq!(ok[&NodeId::new("node1")], NodeAddress::new("10.0.0.1", 8081));
        let dup = "{\n  \"a\": {\"host\": \"h\", \"port\": 1},\n  \"a\": {\"host\": \"h\", \"port\": 2}\n}";
        match parse(p, dup) {
            Err(DiscoveryError::DuplicateNode { line, id, .. }) => assert_eq!((line, id.as_str()), (3, "a")),
            other => panic!("{other:?}"),
        }
        match parse(p, "{\n \"a\": {\"host\": \"h\", \"port\": 99999}\n}") {
            Err(e @ DiscoveryError::InvalidFile { line: 2, .. }) => {
                assert!(e.to_string().starts_with("cluster.json:2:"), "{e}")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(p, "{} x"),
            Err(DiscoveryError::InvalidFile { line: 1, .. })
        ));
    }
}
