//! The lock service: `lock_acquire`, `lock_renew`, `lock_release`, `lock_holder`.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::{bad_answer, ms, typed, typed_call};
use crate::client::{Call, Client};
use crate::error::Error;
use crate::policy::CallKind;

/// Distributed locks with leases and fencing tokens.
#[derive(Clone, Debug)]
pub struct Lock {
    client: Client,
}

/// What an acquire or renew came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Acquired {
    /// The caller holds the lock.
    Granted {
        /// The fencing token: pass it to whatever the lock protects, and to renew and
        /// release.
        token: u64,
        /// When the lease ends (log time, ms since the Unix epoch).
        expires_at: u64,
    },
    /// Someone else holds it.
    Held {
        /// The holder.
        holder: String,
        /// When its lease ends.
        expires_at: u64,
    },
    /// A renew by someone who does not hold it (its lease ran out).
    NotHolder,
}

/// A lock's holder.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Holder {
    /// The owner.
    pub owner: String,
    /// Its fencing token.
    pub token: u64,
    /// When its lease ends.
    pub expires_at: u64,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    granted: Option<bool>,
    #[serde(default)]
    token: Option<u64>,
    #[serde(default)]
    holder: Option<String>,
    #[serde(default)]
    expires_at: Option<u64>,
    #[serde(default)]
    released: Option<bool>,
    #[serde(default)]
    not_holder: Option<bool>,
}

impl Answer {
    fn acquired(self) -> Result<Acquired, String> {
        match (self.granted, self.not_holder, self.token, self.holder, self.expires_at) {
            (_, Some(true), ..) => Ok(Acquired::NotHolder),
            (Some(true), _, Some(token), _, Some(expires_at)) => Ok(Acquired::Granted { token, expires_at }),
            (Some(false), _, _, Some(holder), Some(expires_at)) => Ok(Acquired::Held { holder, expires_at }),
            _ => Err("neither granted, held nor not_holder".into()),
        }
    }
}

#[derive(Deserialize)]
struct HolderAnswer {
    holder: Option<Holder>,
}

impl Lock {
    /// The lock service through `client`.
    pub fn new(client: Client) -> Lock {
        Lock { client }
    }

    /// Acquires `name` for `owner` with a lease of `ttl`, waiting up to `wait` while
    /// another holds it. An owner that holds the lock already is granted it again
    /// (with its token), so a retried acquire finds the lock it got.
    pub async fn acquire(&self, name: &str, owner: &str, ttl: Duration, wait: Duration) -> Result<Acquired, Error> {
        let p = json!({"name": name, "owner": owner, "ttl_ms": ms(ttl), "wait_ms": ms(wait)});
        let call = Call::new("lock_acquire", CallKind::Write, p).with_extra_time(wait);
        let a: Answer = typed_call(&self.client, &call).await?;
        a.acquired().map_err(|e| bad_answer(&self.client, "lock_acquire", e))
    }

    /// Extends the lease of `name`, held by `owner` with `token`, to `ttl` from now.
    pub async fn renew(&self, name: &str, owner: &str, token: u64, ttl: Duration) -> Result<Acquired, Error> {
        let p = json!({"name": name, "owner": owner, "token": token, "ttl_ms": ms(ttl)});
        let a: Answer = typed(&self.client, "lock_renew", CallKind::IdempotentWrite, p).await?;
        a.acquired().map_err(|e| bad_answer(&self.client, "lock_renew", e))
    }

    /// Releases `name`; `false` if `owner` with `token` did not hold it.
    pub async fn release(&self, name: &str, owner: &str, token: u64) -> Result<bool, Error> {
        let p = json!({"name": name, "owner": owner, "token": token});
        let a: Answer = typed(&self.client, "lock_release", CallKind::Write, p).await?;
        Ok(a.released == Some(true))
    }

    /// Who holds `name` now (linearizable).
    pub async fn holder(&self, name: &str) -> Result<Option<Holder>, Error> {
        let a: HolderAnswer = typed(&self.client, "lock_holder", CallKind::Read, json!({"name": name})).await?;
        Ok(a.holder)
    }
}
