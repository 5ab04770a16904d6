//! A recorded history: one [`Op`] per request, with when it was invoked,
//! when (and whether) it completed, and what it returned.

use std::fmt;

/// What a client asked for, on one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// `kv_put {key, value}`: sets the key; returns the previous value.
    Put {
        /// The value written (unique in a chaos run).
        value: String,
    },
    /// `kv_get {key}`: reads the key.
    Get,
    /// `kv_cas {key, expected, new}`: sets the key to `new` only if it holds `expected`
    /// (`None`: absent); returns whether it did and the value it found.
    Cas {
        /// The value the key must hold.
        expected: Option<String>,
        /// The value to set (unique in a chaos run).
        new: String,
    },
}

/// What a completed call returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ret {
    /// A put's previous value.
    Put {
        /// The value before the put.
        previous: Option<String>,
    },
    /// A get's value.
    Get {
        /// The value read.
        value: Option<String>,
    },
    /// A cas's answer.
    Cas {
        /// Whether the key held `expected` (and now holds `new`).
        ok: bool,
        /// The value before the cas.
        previous: Option<String>,
    },
}

/// How a call ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Answered at `complete` (microseconds since the run started).
    Ok {
        /// When the answer arrived.
        complete: u64,
        /// The answer.
        ret: Ret,
    },
    /// Definitely not applied (refused before it was proposed: not the leader, the
    /// node was not listening, the request was malformed).
    Fail,
    /// May or may not have taken effect, at any time after it was invoked (a timeout,
    /// a connection lost mid-request, a node that stopped while the write was pending).
    Unknown,
}

/// One request of one client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    /// The client that issued it.
    pub client: usize,
    /// The key.
    pub key: String,
    /// What was asked.
    pub call: Call,
    /// When it was sent (microseconds since the run started).
    pub invoke: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// One of the reads made after every fault was healed, at the end of the run.
    pub final_read: bool,
}

impl Op {
    /// Whether this op writes (a put or a cas).
    pub fn is_write(&self) -> bool {
        !matches!(self.call, Call::Get)
    }

    /// Whether this op is an acknowledged write that took effect: an answered put, or
    /// an answered cas that succeeded.
    pub fn is_acknowledged_write(&self) -> bool {
        match &self.outcome {
            Outcome::Ok { ret, .. } => matches!(ret, Ret::Put { .. } | Ret::Cas { ok: true, .. }),
            _ => false,
        }
    }

    /// The kind of call, for counts: `put`, `get` or `cas`.
    pub fn kind(&self) -> &'static str {
        match self.call {
            Call::Put { .. } => "put",
            Call::Get => "get",
            Call::Cas { .. } => "cas",
        }
    }
}

fn show(v: &Option<String>) -> String {
    match v {
        Some(v) => format!("{v:?}"),
        None => "absent".into(),
    }
}

fn ms(us: u64) -> String {
    format!("{:.1} ms", us as f64 / 1000.0)
}

/// One line: `c3 put(k1, "c3-17") -> previous "c1-4"  [1234.5 ms, 1240.1 ms]`.
impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = if self.final_read {
            "final".to_string()
        } else {
            format!("c{}", self.client)
        };
        let k = &self.key;
        match &self.call {
            Call::Put { value } => write!(f, "{who} put({k}, {value:?})")?,
            Call::Get => write!(f, "{who} get({k})")?,
            Call::Cas { expected, new } => write!(f, "{who} cas({k}, {} -> {new:?})", show(expected))?,
        }
        match &self.outcome {
            Outcome::Ok { complete, ret } => {
                match ret {
                    Ret::Put { previous } => write!(f, " -> previous {}", show(previous))?,
                    Ret::Get { value } => write!(f, " -> {}", show(value))?,
                    Ret::Cas { ok, previous } => write!(f, " -> ok={ok} previous {}", show(previous))?,
                }
                write!(f, "  [{}, {}]", ms(self.invoke), ms(*complete))
            }
            Outcome::Fail => write!(f, " -> failed (not applied)  [{}, -]", ms(self.invoke)),
            Outcome::Unknown => write!(f, " -> unknown outcome  [{}, ∞)", ms(self.invoke)),
        }
    }
}
