//! The etcd discovery's background task: sessions of list, re-register, watch and
//! keep-alive, with backoff between them.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::http::{b64, prefix_end, BACKEND};
use super::shared::Shared;
use crate::DiscoveryError;

/// The background task: sessions of list + re-register + watch + keep-alive,
/// with backoff between them.
pub(super) async fn run(shared: Arc<Shared>) {
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
