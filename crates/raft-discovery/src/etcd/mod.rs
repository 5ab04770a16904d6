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

mod http;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use raft_core::NodeId;
use serde_json::{json, Value};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use self::http::{b64, int, prefix_end, Http, Kv, BACKEND};
use crate::{DiscoveryError, NodeAddress, ServiceDiscovery};

/// Settings of [`EtcdServiceDiscovery`].
#[derive(Clone, Debug)]
pub struct EtcdConfig {
    /// Client endpoints as `host:port` (plain HTTP), tried in turn.
    pub endpoints: Vec<String>,
    /// The key prefix: node `id` is the key `{prefix}/{id}`.
    pub prefix: String,
    /// The TTL of registrations: a node that stops renewing disappears after it.
    /// etcd counts in whole seconds (at least 1; etcd may round small TTLs up).
    pub lease_ttl: Duration,
    /// The longest any single request to etcd may take.
    pub timeout: Duration,
    /// How long reads are answered from the last view while etcd is unreachable.
    pub stale_grace: Duration,
}

impl EtcdConfig {
    /// Nodes under `prefix` in the etcd at `endpoint` (`host:port`).
    pub fn new(endpoint: impl Into<String>, prefix: impl Into<String>) -> Self {
        EtcdConfig {
            endpoints: vec![endpoint.into()],
            prefix: normalize_prefix(&prefix.into()),
            lease_ttl: Duration::from_secs(10),
            timeout: Duration::from_secs(3),
            stale_grace: Duration::from_secs(60),
        }
    }

    /// Sets the endpoints tried in turn.
    pub fn with_endpoints<I, S>(mut self, endpoints: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.endpoints = endpoints.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`lease_ttl`](Self::lease_ttl).
    pub fn with_lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl;
        self
    }

    /// Sets [`timeout`](Self::timeout).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets [`stale_grace`](Self::stale_grace).
    pub fn with_stale_grace(mut self, grace: Duration) -> Self {
        self.stale_grace = grace;
        self
    }

    fn ttl_secs(&self) -> i64 {
        (self.lease_ttl.as_secs_f64().ceil() as i64).max(1)
    }

    fn keepalive_every(&self) -> Duration {
        (self.lease_ttl / 3).max(Duration::from_millis(200))
    }
}

/// `easyraft`, `/easyraft/` and `/easyraft` are all `/easyraft`.
fn normalize_prefix(p: &str) -> String {
    let p = p.trim_end_matches('/');
    if p.starts_with('/') {
        p.to_string()
    } else {
        format!("/{p}")
    }
}

/// One node this process registered.
#[derive(Clone, Debug)]
struct Registration {
    address: NodeAddress,
    /// The lease the key lives under; `None` until etcd granted one.
    lease: Option<i64>,
}

#[derive(Debug, Default)]
struct State {
    view: BTreeMap<NodeId, NodeAddress>,
    /// The etcd revision `view` reflects; older watch events are ignored.
    revision: i64,
    /// A watch is open and the view is current.
    live: bool,
    /// When the view was last known current (while live: now).
    current_at: Option<Instant>,
    registrations: BTreeMap<NodeId, Registration>,
}

#[derive(Debug)]
struct Shared {
    cfg: EtcdConfig,
    http: Http,
    state: Mutex<State>,
    /// Wakes the background task (a registration changed).
    wake: Notify,
    /// Held while registrations are published, renewed or revoked, so the
    /// background renewal and a caller's `register_node` never both grant a
    /// lease for one node (the loser's lease would own the key and expire).
    publishing: tokio::sync::Mutex<()>,
}

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

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn key(&self, id: &NodeId) -> String {
        format!("{}/{}", self.cfg.prefix, id)
    }

    fn dir(&self) -> String {
        format!("{}/", self.cfg.prefix)
    }

    fn id_of(&self, key: &str) -> Option<NodeId> {
        let id = key.strip_prefix(&self.dir())?;
        (!id.is_empty()).then(|| NodeId::new(id))
    }

    /// Lists the prefix: the nodes and the revision of that listing.
    async fn list(&self) -> Result<(BTreeMap<NodeId, NodeAddress>, i64), DiscoveryError> {
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
    fn set_view(&self, nodes: BTreeMap<NodeId, NodeAddress>, revision: i64) {
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

    async fn revoke(&self, lease: i64) -> Result<(), DiscoveryError> {
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
    async fn publish(&self, id: &NodeId, addr: &NodeAddress) -> Result<i64, DiscoveryError> {
        let lease = self.grant().await?;
        if let Err(e) = self.put(id, addr, lease).await {
            let _ = self.revoke(lease).await;
            return Err(e);
        }
        Ok(lease)
    }

    /// Renews every registration, re-publishing those whose lease is gone (or
    /// that never got one).
    async fn renew_all(&self) -> Result<(), DiscoveryError> {
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
    fn apply(&self, resp: &Value) -> Result<(), DiscoveryError> {
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

/// The background task: sessions of list + re-register + watch + keep-alive,
/// with backoff between them.
async fn run(shared: Arc<Shared>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let started = Instant::now();
        let err = session(&shared).await;
        {
            let mut st = shared.lock();
            if st.live {
                // The view was current until this moment.
                st.current_at = Some(Instant::now());
            }
            st.live = false;
        }
        if started.elapsed() > Duration::from_secs(5) {
            backoff = Duration::from_millis(100);
        }
        warn!(error = %err, retry_in = ?backoff, "etcd discovery lost its connection");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// One connected session; returns why it ended.
async fn session(shared: &Shared) -> DiscoveryError {
    let (nodes, revision) = match shared.list().await {
        Ok(x) => x,
        Err(e) => return e,
    };
    shared.set_view(nodes, revision);
    let dir = shared.dir();
    let mut watch = match shared.http.watch(&dir, &prefix_end(&dir), revision + 1).await {
        Ok(w) => w,
        Err(e) => return e,
    };
    if let Err(e) = shared.renew_all().await {
        return e;
    }
    shared.lock().live = true;
    debug!(revision, "etcd watch open");
    let mut tick = tokio::time::interval(shared.cfg.keepalive_every());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            msg = watch.next() => match msg {
                Ok(Some(resp)) => {
                    if let Err(e) = shared.apply(&resp) {
                        return e;
                    }
                }
                Ok(None) => {
                    return DiscoveryError::Unreachable {
                        backend: BACKEND,
                        server: shared.http.servers(),
                        reason: "etcd closed the watch".into(),
                    }
                }
                Err(e) => return e,
            },
            _ = tick.tick() => {
                let renewed = if shared.lock().registrations.is_empty() {
                    // Nothing to renew: still check that etcd answers, so a silently
                    // dead connection is noticed.
                    shared.http.call("/v3/kv/range", json!({"key": b64(&dir), "count_only": true})).await.map(|_| ())
                } else {
                    shared.renew_all().await
                };
                if let Err(e) = renewed {
                    return e;
                }
            }
            _ = shared.wake.notified() => {
                if let Err(e) = shared.renew_all().await {
                    return e;
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_normalized() {
        for p in ["easyraft", "/easyraft", "/easyraft/", "easyraft/"] {
            assert_eq!(normalize_prefix(p), "/easyraft");
        }
        let cfg = EtcdConfig::new("127.0.0.1:2379", "x").with_lease_ttl(Duration::from_millis(1500));
        assert_eq!(cfg.ttl_secs(), 2);
    }
}
