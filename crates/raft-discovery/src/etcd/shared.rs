//! What the etcd discovery knows, shared by the discovery and its background task,
//! and the requests that keep it current: the view of the prefix (listed, then
//! updated by the watch) and this process's registrations with their leases.

use std::collections::BTreeMap;
use std::sync::Mutex;

use raft_core::NodeId;
use serde_json::{json, Value};
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::config::EtcdConfig;
use super::http::{b64, int, prefix_end, Http, Kv, BACKEND};
use crate::{DiscoveryError, NodeAddress};

/// One node this process registered.
#[derive(Clone, Debug)]
pub(super) struct Registration {
    pub(super) address: NodeAddress,
    /// The lease the key lives under; `None` until etcd granted one.
    pub(super) lease: Option<i64>,
}

#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) view: BTreeMap<NodeId, NodeAddress>,
    /// The etcd revision `view` reflects; older watch events are ignored.
    pub(super) revision: i64,
    /// A watch is open and the view is current.
    pub(super) live: bool,
    /// When the view was last known current (while live: now).
    pub(super) current_at: Option<Instant>,
    pub(super) registrations: BTreeMap<NodeId, Registration>,
}

#[derive(Debug)]
pub(super) struct Shared {
    pub(super) cfg: EtcdConfig,
    pub(super) http: Http,
    pub(super) state: Mutex<State>,
    /// Wakes the background task (a registration changed).
    pub(super) wake: Notify,
    /// Held while registrations are published, renewed or revoked, so the
    /// background renewal and a caller's `register_node` never both grant a
    /// lease for one node (the loser's lease would own the key and expire).
    pub(super) publishing: tokio::sync::Mutex<()>,
}

impl Shared {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn key(&self, id: &NodeId) -> String {
        format!("{}/{}", self.cfg.prefix, id)
    }

    pub(super) fn dir(&self) -> String {
        format!("{}/", self.cfg.prefix)
    }

    fn id_of(&self, key: &str) -> Option<NodeId> {
        let id = key.strip_prefix(&self.dir())?;
        (!id.is_empty()).then(|| NodeId::new(id))
    }

    /// Lists the prefix: the nodes and the revision of that listing.
    pub(super) async fn list(&self) -> Result<(BTreeMap<NodeId, NodeAddress>, i64), DiscoveryError> {
        let dir = self.dir();
        let resp = self
            .http
            .call(
                "/v3/kv/range",
                json!({"key": b64(&dir), "range_end": b64(&prefix_end(&dir))}),
            )
            .await?;
        let revision = int(&resp["header"]["revision"]);
        let mut nodes = BTreeMap::new();
        for kv in resp["kvs"].as_array().into_iter().flatten().filter_map(Kv::from_json) {
            if let Some((id, addr)) = self.decode(&kv) {
                nodes.insert(id, addr);
            }
        }
        Ok((nodes, revision))
    }

    fn decode(&self, kv: &Kv) -> Option<(NodeId, NodeAddress)> {
        let id = self.id_of(&kv.key)?;
        let addr = serde_json::from_str::<NodeAddress>(&kv.value)
            .ok()
            .or_else(|| kv.value.trim().parse().ok());
        match addr {
            Some(a) => Some((id, a)),
            None => {
                warn!(key = %kv.key, value = %kv.value, "etcd value is not an address; ignored");
                None
            }
        }
    }

    /// Replaces the view with a listing taken at `revision`.
    pub(super) fn set_view(&self, nodes: BTreeMap<NodeId, NodeAddress>, revision: i64) {
        let mut st = self.lock();
        st.view = nodes;
        st.revision = revision;
        st.current_at = Some(Instant::now());
    }

    async fn grant(&self) -> Result<i64, DiscoveryError> {
        let resp = self
            .http
            .call("/v3/lease/grant", json!({"TTL": self.cfg.ttl_secs()}))
            .await?;
        match int(&resp["ID"]) {
            0 => Err(DiscoveryError::Backend {
                backend: BACKEND,
                reason: format!("lease grant answered no lease: {resp}"),
            }),
            id => Ok(id),
        }
    }

    pub(super) async fn revoke(&self, lease: i64) -> Result<(), DiscoveryError> {
        match self
            .http
            .call("/v3/lease/revoke", json!({"ID": lease.to_string()}))
            .await
        {
            // A lease that already expired is as good as revoked.
            Err(DiscoveryError::Backend { reason, .. }) if reason.contains("not found") => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// Renews `lease`; `false` if etcd no longer knows it.
    async fn keepalive(&self, lease: i64) -> Result<bool, DiscoveryError> {
        let resp = self
            .http
            .call("/v3/lease/keepalive", json!({"ID": lease.to_string()}))
            .await?;
        Ok(int(&resp["result"]["TTL"]) > 0)
    }

    async fn put(&self, id: &NodeId, addr: &NodeAddress, lease: i64) -> Result<i64, DiscoveryError> {
        let value = serde_json::to_string(addr).unwrap_or_default();
        let resp = self
            .http
            .call(
                "/v3/kv/put",
                json!({"key": b64(&self.key(id)), "value": b64(&value), "lease": lease.to_string()}),
            )
            .await?;
        Ok(int(&resp["header"]["revision"]))
    }

    /// Puts `id` under a fresh lease; returns the lease.
    pub(super) async fn publish(&self, id: &NodeId, addr: &NodeAddress) -> Result<i64, DiscoveryError> {
        let lease = self.grant().await?;
        if let Err(e) = self.put(id, addr, lease).await {
            let _ = self.revoke(lease).await;
            return Err(e);
        }
        Ok(lease)
    }

    /// Renews every registration, re-publishing those whose lease is gone (or
    /// that never got one).
    pub(super) async fn renew_all(&self) -> Result<(), DiscoveryError> {
        let _publishing = self.publishing.lock().await;
        let regs: Vec<(NodeId, Registration)> = self
            .lock()
            .registrations
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (id, reg) in regs {
            let alive = match reg.lease {
                Some(lease) => self.keepalive(lease).await?,
                None => false,
            };
            if alive {
                continue;
            }
            let lease = self.publish(&id, &reg.address).await?;
            let kept = match self.lock().registrations.get_mut(&id) {
                // Still the same registration: record the new lease.
                Some(r) if r.address == reg.address => {
                    r.lease = Some(lease);
                    true
                }
                _ => false,
            };
            if kept {
                info!(%id, address = %reg.address, "re-registered in etcd");
            } else {
                // Unregistered or re-registered meanwhile: undo ours.
                let _ = self.revoke(lease).await;
            }
        }
        Ok(())
    }

    /// Applies one watch response to the view; `Err` if the watch was cancelled.
    pub(super) fn apply(&self, resp: &Value) -> Result<(), DiscoveryError> {
        if resp["canceled"].as_bool() == Some(true) {
            return Err(DiscoveryError::Backend {
                backend: BACKEND,
                reason: format!(
                    "watch cancelled (compacted at {}): {}",
                    int(&resp["compact_revision"]),
                    resp["cancel_reason"]
                ),
            });
        }
        let mut st = self.lock();
        for ev in resp["events"].as_array().into_iter().flatten() {
            let Some(kv) = Kv::from_json(&ev["kv"]) else { continue };
            if kv.mod_revision <= st.revision {
                continue;
            }
            let delete = ev["type"].as_str() == Some("DELETE");
            if delete {
                if let Some(id) = self.id_of(&kv.key) {
                    debug!(%id, "etcd: node removed");
                    st.view.remove(&id);
                }
            } else if let Some((id, addr)) = self.decode(&kv) {
                debug!(%id, %addr, "etcd: node updated");
                st.view.insert(id, addr);
            }
        }
        let rev = int(&resp["header"]["revision"]);
        st.revision = st.revision.max(rev);
        st.current_at = Some(Instant::now());
        Ok(())
    }
}
