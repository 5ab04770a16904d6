//! A distributed lock with fencing tokens.
//!
//! Time comes from the log, never from a replica's clock: the leader stamps each
//! command with its clock (`now_ms`), and the state machine keeps the highest stamp it
//! has applied as "now", so every replica decides expiry identically, and a new leader
//! whose clock lags cannot move time backwards. The fencing token of a grant is the
//! log index it was applied at: it only grows, so a storage service can refuse writes
//! carrying an older token than one it has seen.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use easyraft::{BoxError, LogIndex, StateMachine};
use jsonrpsee::types::{ErrorObjectOwned, Params};
use jsonrpsee::RpcModule;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::api::{decode, encode, field, now_ms, Hosts, Node};

/// Who holds a lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The owner's id.
    pub owner: String,
    /// The fencing token of the grant.
    pub token: LogIndex,
    /// When the lease ends, in log time (milliseconds).
    pub expires_at: u64,
}

/// The locks' state.
#[derive(Default, Serialize, Deserialize)]
pub struct LockTable {
    locks: BTreeMap<String, Holder>,
    /// The highest leader timestamp applied: the replicas' common clock.
    now: u64,
}

/// A lock command; `now_ms` is stamped by the leader.
#[derive(Debug, Serialize, Deserialize)]
pub enum LockCommand {
    /// Take the lock if it is free or expired.
    Acquire {
        /// The lock.
        name: String,
        /// Who asks.
        owner: String,
        /// How long the grant lasts.
        ttl_ms: u64,
        /// The leader's clock.
        now_ms: u64,
    },
    /// Extend a grant still held.
    Renew {
        /// The lock.
        name: String,
        /// The holder.
        owner: String,
        /// The grant's token.
        token: LogIndex,
        /// The new lease length from now.
        ttl_ms: u64,
        /// The leader's clock.
        now_ms: u64,
    },
    /// Give the lock up.
    Release {
        /// The lock.
        name: String,
        /// The holder.
        owner: String,
        /// The grant's token.
        token: LogIndex,
        /// The leader's clock.
        now_ms: u64,
    },
}

/// The result of a lock command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LockResult {
    /// Granted or renewed.
    Granted(Holder),
    /// Someone else holds it.
    Held(Holder),
    /// Released.
    Released,
    /// The caller does not hold the lock (expired, released, or another token).
    NotHolder,
}

impl LockTable {
    fn live(&self, name: &str) -> Option<&Holder> {
        self.locks.get(name).filter(|h| h.expires_at > self.now)
    }
}

impl StateMachine for LockTable {
    type Command = LockCommand;
    type Response = LockResult;
    type Query = String;
    type QueryResponse = Option<Holder>;

    fn apply(&mut self, index: LogIndex, cmd: LockCommand) -> LockResult {
        let stamp = match &cmd {
            LockCommand::Acquire { now_ms, .. }
            | LockCommand::Renew { now_ms, .. }
            | LockCommand::Release { now_ms, .. } => *now_ms,
        };
        self.now = self.now.max(stamp);
        match cmd {
            LockCommand::Acquire {
                name, owner, ttl_ms, ..
            } => match self.live(&name) {
                Some(h) => LockResult::Held(h.clone()),
                None => {
                    let h = Holder {
                        owner,
                        token: index,
                        expires_at: self.now.saturating_add(ttl_ms),
                    };
                    self.locks.insert(name, h.clone());
                    LockResult::Granted(h)
                }
            },
            LockCommand::Renew {
                name,
                owner,
                token,
                ttl_ms,
                ..
            } => {
                let now = self.now;
                match self.locks.get_mut(&name).filter(|h| h.expires_at > now) {
                    Some(h) if h.owner == owner && h.token == token => {
                        h.expires_at = now.saturating_add(ttl_ms);
                        LockResult::Granted(h.clone())
                    }
                    _ => LockResult::NotHolder,
                }
            }
            LockCommand::Release { name, owner, token, .. } => match self.live(&name) {
                Some(h) if h.owner == owner && h.token == token => {
                    self.locks.remove(&name);
                    LockResult::Released
                }
                _ => LockResult::NotHolder,
            },
        }
    }

    fn query(&self, name: String) -> Option<Holder> {
        self.live(&name).cloned()
    }

    fn snapshot(&self) -> Result<bytes::Bytes, BoxError> {
        encode(self)
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), BoxError> {
        *self = decode(data)?;
        Ok(())
    }
}

fn answer(r: LockResult) -> Value {
    match r {
        LockResult::Granted(h) => {
            json!({"granted": true, "owner": h.owner, "token": h.token, "expires_at": h.expires_at})
        }
        LockResult::Held(h) => json!({"granted": false, "holder": h.owner, "expires_at": h.expires_at}),
        LockResult::Released => json!({"released": true}),
        LockResult::NotHolder => json!({"granted": false, "released": false, "not_holder": true}),
    }
}

async fn acquire<M: Hosts<LockTable>>(params: Params<'static>, node: Arc<Node<M>>) -> Result<Value, ErrorObjectOwned> {
    let p: Value = params.parse()?;
    let name: String = field(&p, "name")?;
    let owner: String = field(&p, "owner")?;
    let ttl_ms: u64 = field(&p, "ttl_ms")?;
    let wait_ms: u64 = p.get("wait_ms").and_then(Value::as_u64).unwrap_or(0).min(60_000);
    let deadline = tokio::time::Instant::now() + Duration::from_millis(wait_ms);
    // Only the first attempt carries the request's session: a retry of the request
    // gets that attempt's answer, and the waiting attempts after it are new commands.
    // A lock held by `owner` itself is answered as granted (with its token): a retried
    // acquire whose first answer was lost finds the lock it got.
    let mut p = p;
    loop {
        let cmd = LockCommand::Acquire {
            name: name.clone(),
            owner: owner.clone(),
            ttl_ms,
            now_ms: now_ms(),
        };
        let r = match node.propose::<LockTable>(&p, cmd).await? {
            LockResult::Held(h) if h.owner == owner => LockResult::Granted(h),
            r => r,
        };
        if matches!(r, LockResult::Granted(_)) || tokio::time::Instant::now() >= deadline {
            return Ok(answer(r));
        }
        p = Value::Null;
        // Wait for a release or expiry, then try again.
        let pause = match &r {
            LockResult::Held(holder) => Duration::from_millis(holder.expires_at.saturating_sub(now_ms()).clamp(5, 50)),
            _ => Duration::from_millis(20),
        };
        tokio::time::sleep(pause.min(deadline.saturating_duration_since(tokio::time::Instant::now()))).await;
    }
}

/// The lock API: `lock_acquire {name, owner, ttl_ms, wait_ms?}`,
/// `lock_renew {name, owner, token, ttl_ms}`, `lock_release {name, owner, token}`,
/// `lock_holder {name}`.
pub fn rpc(node: Node<LockTable>) -> RpcModule<Node<LockTable>> {
    rpc_for(node)
}

/// [`rpc`] over any state machine that carries the lock service (see
/// [`Hosts`]), such as `easyraft-server`'s combined machine.
pub fn rpc_for<M: Hosts<LockTable>>(node: Node<M>) -> RpcModule<Node<M>> {
    let mut m = RpcModule::new(node);
    let _ = m.register_async_method("lock_acquire", |params, node, _| acquire(params, node));
    let _ = m.register_async_method("lock_renew", |params, node, _| async move {
        let p: Value = params.parse()?;
        let cmd = LockCommand::Renew {
            name: field(&p, "name")?,
            owner: field(&p, "owner")?,
            token: field(&p, "token")?,
            ttl_ms: field(&p, "ttl_ms")?,
            now_ms: now_ms(),
        };
        let r = node.propose::<LockTable>(&p, cmd).await?;
        Ok::<_, ErrorObjectOwned>(answer(r))
    });
    let _ = m.register_async_method("lock_release", |params, node, _| async move {
        let p: Value = params.parse()?;
        let cmd = LockCommand::Release {
            name: field(&p, "name")?,
            owner: field(&p, "owner")?,
            token: field(&p, "token")?,
            now_ms: now_ms(),
        };
        let r = node.propose::<LockTable>(&p, cmd).await?;
        Ok::<_, ErrorObjectOwned>(answer(r))
    });
    let _ = m.register_async_method("lock_holder", |params, node, _| async move {
        let p: Value = params.parse()?;
        let name: String = field(&p, "name")?;
        let h = node.query::<LockTable>(name, false).await?;
        Ok::<_, ErrorObjectOwned>(
            json!({ "holder": h.map(|h| json!({"owner": h.owner, "token": h.token, "expires_at": h.expires_at})) }),
        )
    });
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acquire(name: &str, owner: &str, ttl: u64, now: u64) -> LockCommand {
        LockCommand::Acquire {
            name: name.into(),
            owner: owner.into(),
            ttl_ms: ttl,
            now_ms: now,
        }
    }

    #[test]
    fn expiry_follows_log_time_and_tokens_only_grow() {
        let mut t = LockTable::default();
        let LockResult::Granted(a) = t.apply(10, acquire("l", "a", 100, 1_000)) else {
            panic!()
        };
        assert_eq!(a.token, 10);
        assert!(matches!(
            t.apply(11, acquire("l", "b", 100, 1_050)),
            LockResult::Held(_)
        ));
        // A new leader with a slow clock cannot move time backwards: still held.
        assert!(matches!(t.apply(12, acquire("l", "b", 100, 900)), LockResult::Held(_)));
        // Past the lease in log time: b gets it, with a larger token.
        let LockResult::Granted(b) = t.apply(13, acquire("l", "b", 100, 1_101)) else {
            panic!()
        };
        assert!(b.token > a.token);
        // a's old grant can neither renew nor release.
        let renew = LockCommand::Renew {
            name: "l".into(),
            owner: "a".into(),
            token: a.token,
            ttl_ms: 100,
            now_ms: 1_102,
        };
        assert_eq!(t.apply(14, renew), LockResult::NotHolder);
    }
}
