//! The admin API (docs/server-api.md): members, add learner, promote, remove, replace,
//! transfer leadership, snapshot, compact, status of every member. The token is checked by the HTTP
//! layer before a call gets here.
//!
//! One membership operation at a time per leader: a second one while another is in
//! progress (including the wait for a learner to catch up inside `admin_replace`) is
//! refused with `-32031 change_in_progress`, as is one while Raft itself has a
//! configuration change in flight.

mod report;
mod rules;

use std::sync::Arc;
use std::time::Duration;

use easyraft::{Error, MembershipChange, NodeId, RaftHandle, Role, Status};
use examples::api::{bad, opt_str_param, str_param, Node};
use jsonrpsee::types::{ErrorObjectOwned, Params};
use jsonrpsee::RpcModule;
use serde_json::{json, Value};

pub use self::rules::refused;
use self::rules::{caught_up, is_member, lag, reason};
use crate::client::Caller;
use crate::directory::{Directory, DirectoryCommand, MemberAddress};
use crate::machine::{ServerCommand, ServerMachine};

/// What the admin methods work with.
pub struct Admin {
    /// The API's view of the node (error mapping, not-leader hints).
    pub node: Node<ServerMachine>,
    /// The node.
    pub handle: RaftHandle<ServerMachine>,
    /// The directory mirror.
    pub directory: Directory,
    /// A learner within this many entries of the leader may be promoted.
    pub promote_lag: u64,
    /// How long `admin_replace` waits for its learner to catch up.
    pub catch_up_timeout: Duration,
    /// Held for the whole of a membership operation.
    pub change: tokio::sync::Mutex<()>,
    /// Reaches other members' client ports (`admin_status`).
    pub caller: Caller,
}

type Rpc = Result<Value, ErrorObjectOwned>;

impl Admin {
    fn map(&self, e: Error) -> ErrorObjectOwned {
        match e {
            Error::Membership(m) => match reason(&m) {
                Some(reason) => refused(reason, m.to_string()),
                None => bad(m.to_string()),
            },
            e => self.node.error(e),
        }
    }

    /// This node's status if it leads, else a not-leader error naming the leader.
    async fn leader_status(&self) -> Result<Status, ErrorObjectOwned> {
        let s = self.handle.status().await.map_err(|e| self.map(e))?;
        if s.role != Role::Leader {
            return Err(self.map(Error::NotLeader {
                leader_hint: s.leader.clone(),
            }));
        }
        Ok(s)
    }

    /// Takes the membership lock, or refuses with `change_in_progress`.
    fn lock(&self) -> Result<tokio::sync::MutexGuard<'_, ()>, ErrorObjectOwned> {
        self.change
            .try_lock()
            .map_err(|_| refused("change_in_progress", "another membership change is in progress"))
    }

    async fn record(&self, id: &str, peer: String, client: Option<String>) -> Result<(), ErrorObjectOwned> {
        peer.parse::<easyraft::discovery::NodeAddress>()
            .map_err(|e| bad(format!("`peer`: {e}")))?;
        let cmd = ServerCommand::Directory(DirectoryCommand::Set(id.to_string(), MemberAddress { peer, client }));
        self.handle.propose(cmd).await.map_err(|e| self.map(e))?;
        Ok(())
    }

    async fn add_learner(&self, s: &Status, id: &str, peer: String, client: Option<String>) -> Rpc {
        if is_member(s, id) {
            return Err(refused("already_member", format!("{id} is already a member")));
        }
        if !s.membership.voters_outgoing.is_empty() {
            return Err(refused("change_in_progress", "a joint configuration is in flight"));
        }
        self.record(id, peer, client).await?;
        self.handle.add_learner(id).await.map_err(|e| self.map(e))?;
        Ok(json!({ "index": self.handle.view().commit }))
    }

    async fn promote(&self, s: &Status, id: &str) -> Rpc {
        if s.membership.voters.contains(&NodeId::new(id)) {
            return Err(refused("already_member", format!("{id} is already a voter")));
        }
        if !s.membership.learners.contains(&NodeId::new(id)) {
            return Err(refused("unknown_member", format!("{id} is not a learner")));
        }
        if !caught_up(s, id, self.promote_lag) {
            let behind = lag(s, id).map_or("an unknown number of".to_string(), |l| l.to_string());
            return Err(refused(
                "not_caught_up",
                format!(
                    "{id} has not caught up: {behind} entries behind (promote_lag {})",
                    self.promote_lag
                ),
            ));
        }
        self.handle
            .change_membership(vec![MembershipChange::PromoteLearner(NodeId::new(id))])
            .await
            .map_err(|e| self.map(e))?;
        Ok(json!({ "index": self.handle.view().commit }))
    }

    async fn remove(&self, s: &Status, id: &str) -> Rpc {
        let nid = NodeId::new(id);
        if !is_member(s, id) {
            return Err(refused("unknown_member", format!("{id} is not a member")));
        }
        if s.membership.voters.len() == 1 && s.membership.voters.contains(&nid) {
            return Err(refused("last_voter", format!("{id} is the last voter")));
        }
        self.handle
            .change_membership(vec![MembershipChange::Remove(nid)])
            .await
            .map_err(|e| self.map(e))?;
        let index = self.handle.view().commit;
        // Best effort: a leader that removed itself steps down and cannot propose.
        let _ = self
            .handle
            .propose(ServerCommand::Directory(DirectoryCommand::Remove(id.to_string())))
            .await;
        Ok(json!({ "index": index }))
    }

    /// Waits until learner `id` is within `promote_lag` of the leader.
    async fn wait_caught_up(&self, id: &str) -> Result<(), ErrorObjectOwned> {
        let deadline = tokio::time::Instant::now() + self.catch_up_timeout;
        loop {
            let s = self.leader_status().await?;
            if caught_up(&s, id, self.promote_lag) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(refused(
                    "not_caught_up",
                    format!("{id} did not catch up within {:?}", self.catch_up_timeout),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn replace(&self, old: &str, id: &str, peer: String, client: Option<String>) -> Rpc {
        let s = self.leader_status().await?;
        if !is_member(&s, old) {
            return Err(refused("unknown_member", format!("{old} is not a member")));
        }
        // A node that joined as a learner (`join` with `learner = true`) is promoted in
        // place; any other member is refused by add_learner.
        let learner = s.membership.learners.contains(&NodeId::new(id));
        if learner {
            self.record(id, peer, client).await?;
        } else {
            self.add_learner(&s, id, peer, client).await?;
        }
        if let Err(e) = self.wait_caught_up(id).await {
            if learner {
                return Err(e);
            }
            // Undo the learner, so a failed replace leaves the membership as it was.
            let _ = self
                .handle
                .change_membership(vec![MembershipChange::Remove(NodeId::new(id))])
                .await;
            return Err(e);
        }
        let s = self.leader_status().await?;
        self.promote(&s, id).await?;
        let s = self.leader_status().await?;
        self.remove(&s, old).await?;
        Ok(json!({}))
    }

    async fn transfer(&self, to: Option<String>) -> Rpc {
        let s = self.leader_status().await?;
        let to = match to {
            Some(t) => NodeId::new(t),
            None => s
                .membership
                .voters
                .iter()
                .filter(|v| **v != s.id)
                .max_by_key(|v| s.progress.get(*v).map_or(0, |p| p.match_index))
                .cloned()
                .ok_or_else(|| bad("there is no other voter to hand leadership to"))?,
        };
        if !s.membership.voters.contains(&to) {
            return Err(refused("unknown_member", format!("{to} is not a voter")));
        }
        self.handle
            .transfer_leadership(to.clone())
            .await
            .map_err(|e| self.map(e))?;
        // Wait (a while) until this node sees the new leader.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut watch = self.handle.watch();
        while watch.borrow().leader.as_ref() == Some(&s.id) || watch.borrow().leader.is_none() {
            match tokio::time::timeout_at(deadline, watch.changed()).await {
                Ok(Ok(())) => {}
                _ => break,
            }
        }
        let leader = self.handle.view().leader.map(|l| l.to_string());
        Ok(json!({ "leader": leader }))
    }

    async fn members(&self) -> Rpc {
        let s = self.handle.status().await.map_err(|e| self.map(e))?;
        Ok(report::members(&s, &self.directory))
    }

    /// Compacts this node's log: a snapshot now, the entries it covers dropped. Runs
    /// on the node asked, leader or not (each member compacts its own log).
    async fn compact(&self) -> Rpc {
        let before = self.handle.status().await.map_err(|e| self.map(e))?;
        let meta = self.handle.snapshot_now().await.map_err(|e| self.map(e))?;
        let after = self.handle.status().await.map_err(|e| self.map(e))?;
        Ok(json!({
            "id": self.handle.id().as_str(),
            "index": meta.index,
            "term": meta.term,
            "first_index_before": before.first_index,
            "first_index": after.first_index,
            "last_index": after.last_index,
            "removed": after.first_index.saturating_sub(before.first_index),
        }))
    }

    async fn status_all(&self) -> Rpc {
        let s = self.handle.status().await.map_err(|e| self.map(e))?;
        Ok(report::status_of_members(&s, &self.directory, &self.caller).await)
    }
}

fn params(p: Params<'static>) -> Result<Value, ErrorObjectOwned> {
    if p.as_str().is_none() {
        return Ok(json!({}));
    }
    p.parse()
}

/// The admin methods.
pub fn rpc(admin: Admin) -> RpcModule<Admin> {
    let mut m = RpcModule::new(admin);
    let _ = m.register_async_method("admin_members", |_, a: Arc<Admin>, _| async move { a.members().await });
    let _ = m.register_async_method(
        "admin_status",
        |_, a: Arc<Admin>, _| async move { a.status_all().await },
    );
    let _ = m.register_async_method("admin_add_learner", |p, a: Arc<Admin>, _| async move {
        let p = params(p)?;
        let (id, peer, client) = (
            str_param(&p, "id")?,
            str_param(&p, "peer")?,
            opt_str_param(&p, "client")?,
        );
        let _guard = a.lock()?;
        let s = a.leader_status().await?;
        a.add_learner(&s, &id, peer, client).await
    });
    let _ = m.register_async_method("admin_promote", |p, a: Arc<Admin>, _| async move {
        let id = str_param(&params(p)?, "id")?;
        let _guard = a.lock()?;
        let s = a.leader_status().await?;
        a.promote(&s, &id).await
    });
    let _ = m.register_async_method("admin_remove", |p, a: Arc<Admin>, _| async move {
        let id = str_param(&params(p)?, "id")?;
        let _guard = a.lock()?;
        let s = a.leader_status().await?;
        a.remove(&s, &id).await
    });
    let _ = m.register_async_method("admin_replace", |p, a: Arc<Admin>, _| async move {
        let p = params(p)?;
        let (old, id) = (str_param(&p, "old")?, str_param(&p, "id")?);
        let (peer, client) = (str_param(&p, "peer")?, opt_str_param(&p, "client")?);
        let _guard = a.lock()?;
        a.replace(&old, &id, peer, client).await
    });
    let _ = m.register_async_method("admin_transfer_leader", |p, a: Arc<Admin>, _| async move {
        let to = opt_str_param(&params(p)?, "to")?;
        a.transfer(to).await
    });
    let _ = m.register_async_method("admin_snapshot", |_, a: Arc<Admin>, _| async move {
        let meta = a.handle.snapshot_now().await.map_err(|e| a.map(e))?;
        Ok::<Value, ErrorObjectOwned>(json!({ "index": meta.index, "term": meta.term }))
    });
    let _ = m.register_async_method("admin_compact", |_, a: Arc<Admin>, _| async move { a.compact().await });
    let _ = m.register_async_method("directory_register", |p, a: Arc<Admin>, _| async move {
        let p = params(p)?;
        let (id, peer, client) = (
            str_param(&p, "id")?,
            str_param(&p, "peer")?,
            opt_str_param(&p, "client")?,
        );
        let s = a.leader_status().await?;
        if !is_member(&s, &id) {
            return Err(refused("unknown_member", format!("{id} is not a member")));
        }
        a.record(&id, peer, client).await?;
        Ok(json!({}))
    });
    m
}
