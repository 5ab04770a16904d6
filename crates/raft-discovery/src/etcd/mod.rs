//! etcd discovery through etcd's v3 JSON gateway.
//!
//! Each node is the key `{prefix}/{id}` with the value `{"host": ..., "port": ...}`
//! (a plain `host:port` value is read too, for keys put by hand with `etcdctl`).
//! `register_node` puts the key under a lease that a background task keeps alive;
//! `unregister_node` revokes the lease (deleting the key); a node that dies stops
//! renewing and its key expires after the lease TTL. The same task lists the prefix
//! and then watches it, so reads are answered from a local view that etcd keeps
//! current. When the connection is lost it reconnects with backoff, lists again,
//! and re-registers every node whose lease etcd no longer knows (an etcd restored
//! from scratch, or a lease that expired while etcd was unreachable).
//!
//! Every request is bounded by [`EtcdConfig::timeout`]: an etcd that is down gives
//! [`DiscoveryError::Timeout`] or [`DiscoveryError::Unreachable`], never a hang.
//! While it is down, `get_node_address` answers from the last view for
//! [`EtcdConfig::stale_grace`] (logging a warning) so running connections can be
//! re-established.

mod config;
mod http;
mod shared;
mod task;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use raft_core::NodeId;
use serde_json::json;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tracing::warn;

pub use self::config::EtcdConfig;
use self::http::{b64, int, Http, BACKEND};
use self::shared::{Registration, Shared, State};
use self::task::run;
use crate::{DiscoveryError, NodeAddress, ServiceDiscovery};

/// Discovery through etcd (v3 API, via its JSON gateway). See the module docs.
#[derive(Debug)]
pub struct EtcdServiceDiscovery {
    shared: Arc<Shared>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for EtcdServiceDiscovery {
    /// Stops the background task without revoking anything: to etcd this looks
    /// like a node that died, and its keys expire with their leases. Call
    /// [`unregister_node`](ServiceDiscovery::unregister_node) first for a clean exit.
    fn drop(&mut self) {
        if let Some(t) = self.task.get_mut().unwrap_or_else(|e| e.into_inner()).take() {
            t.abort();
        }
    }
}

impl EtcdServiceDiscovery {
    /// A discovery with `cfg`. Nothing is sent until first use (the background
    /// task starts then, inside the caller's tokio runtime).
    pub fn new(cfg: EtcdConfig) -> Result<Self, DiscoveryError> {
        if cfg.endpoints.is_empty() {
            return Err(DiscoveryError::Backend {
                backend: BACKEND,
                reason: "no etcd endpoints configured".into(),
            });
        }
        let http = Http::new(cfg.endpoints.clone(), cfg.timeout);
        Ok(EtcdServiceDiscovery {
            shared: Arc::new(Shared {
                cfg,
                http,
                state: Mutex::new(State::default()),
                wake: Notify::new(),
                publishing: tokio::sync::Mutex::new(()),
            }),
            task: Mutex::new(None),
        })
    }

    /// The settings.
    pub fn config(&self) -> &EtcdConfig {
        &self.shared.cfg
    }

    /// Whether the background watch is open (the local view is current).
    pub fn is_live(&self) -> bool {
        self.shared.lock().live
    }

    fn ensure_started(&self) {
        let mut task = self.task.lock().unwrap_or_else(|e| e.into_inner());
        if !matches!(task.as_ref(), Some(t) if !t.is_finished()) {
            *task = Some(tokio::spawn(run(self.shared.clone())));
        }
    }
}

impl EtcdServiceDiscovery {
    /// The last view if it may still be used while etcd is unreachable.
    fn stale_view(&self, e: &DiscoveryError) -> Option<BTreeMap<NodeId, NodeAddress>> {
        let st = self.shared.lock();
        let at = st.current_at?;
        let age = at.elapsed();
        if age > self.shared.cfg.stale_grace {
            return None;
        }
        warn!(error = %e, age = ?age, "etcd unreachable; answering from the last view");
        Some(st.view.clone())
    }
}

#[async_trait]
impl ServiceDiscovery for EtcdServiceDiscovery {
    async fn get_node_address(&self, id: &NodeId) -> Result<NodeAddress, DiscoveryError> {
        self.ensure_started();
        {
            let st = self.shared.lock();
            if st.live {
                return st
                    .view
                    .get(id)
                    .cloned()
                    .ok_or_else(|| DiscoveryError::UnknownNode(id.clone()));
            }
        }
        match self.shared.list().await {
            Ok((nodes, revision)) => {
                let found = nodes.get(id).cloned();
                self.shared.set_view(nodes, revision);
                found.ok_or_else(|| DiscoveryError::UnknownNode(id.clone()))
            }
            Err(e) => match self.stale_view(&e).and_then(|v| v.get(id).cloned()) {
                Some(a) => Ok(a),
                None => Err(e),
            },
        }
    }

    async fn get_all_node_addresses(&self) -> Result<BTreeMap<NodeId, NodeAddress>, DiscoveryError> {
        self.ensure_started();
        {
            let st = self.shared.lock();
            if st.live {
                return Ok(st.view.clone());
            }
        }
        match self.shared.list().await {
            Ok((nodes, revision)) => {
                self.shared.set_view(nodes.clone(), revision);
                Ok(nodes)
            }
            Err(e) => self.stale_view(&e).ok_or(e),
        }
    }

    /// Puts `{prefix}/{id}` under a new lease kept alive in the background. If etcd
    /// cannot be reached the error is returned, and the registration is still kept
    /// and retried by the background task until `unregister_node`.
    async fn register_node(&self, id: &NodeId, address: NodeAddress) -> Result<(), DiscoveryError> {
        self.ensure_started();
        let _publishing = self.shared.publishing.lock().await;
        let old = self.shared.lock().registrations.insert(
            id.clone(),
            Registration {
                address: address.clone(),
                lease: None,
            },
        );
        let result = self.shared.publish(id, &address).await;
        if let Some(old_lease) = old.and_then(|r| r.lease) {
            let _ = self.shared.revoke(old_lease).await;
        }
        match result {
            Ok(lease) => {
                let kept = {
                    let mut st = self.shared.lock();
                    match st.registrations.get_mut(id) {
                        Some(r) if r.address == address => {
                            r.lease = Some(lease);
                            st.view.insert(id.clone(), address);
                            true
                        }
                        _ => false,
                    }
                };
                if !kept {
                    // Unregistered or re-registered meanwhile: undo ours.
                    let _ = self.shared.revoke(lease).await;
                }
                Ok(())
            }
            Err(e) => {
                self.shared.wake.notify_one();
                Err(e)
            }
        }
    }

    /// Revokes the lease of a node registered here (etcd deletes its key), or
    /// deletes the key of a node registered elsewhere.
    async fn unregister_node(&self, id: &NodeId) -> Result<(), DiscoveryError> {
        self.ensure_started();
        let _publishing = self.shared.publishing.lock().await;
        let reg = self.shared.lock().registrations.remove(id);
        if let Some(lease) = reg.as_ref().and_then(|r| r.lease) {
            self.shared.revoke(lease).await?;
        }
        let resp = self
            .shared
            .http
            .call("/v3/kv/deleterange", json!({"key": b64(&self.shared.key(id))}))
            .await?;
        self.shared.lock().view.remove(id);
        if reg.is_none() && int(&resp["deleted"]) == 0 {
            return Err(DiscoveryError::UnknownNode(id.clone()));
        }
        Ok(())
    }

    /// Lists the prefix again (the watch keeps the view current anyway; this
    /// checks that etcd answers and resynchronizes).
    async fn refresh(&self) -> Result<(), DiscoveryError> {
        self.ensure_started();
        let (nodes, revision) = self.shared.list().await?;
        self.shared.set_view(nodes, revision);
        Ok(())
    }
}
