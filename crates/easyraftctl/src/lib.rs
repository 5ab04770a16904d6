//! `easyraftctl`: the command line of an easyraft cluster, in the style of etcdctl,
//! over the client API of docs/server-api.md. The binary is a thin printing layer over
//! this library; the library never prints.
//!
//! ```no_run
//! use easyraftctl::client::{Client, Settings};
//! use easyraftctl::cmd::kv;
//! use easyraftctl::endpoint::Endpoint;
//! use std::time::Duration;
//!
//! # async fn demo() -> Result<(), easyraftctl::error::CtlError> {
//! let client = Client::new(Settings {
//!     // Any members: a follower's "not the leader" hint is followed.
//!     endpoints: Endpoint::parse_list(&["10.0.0.1:7000,10.0.0.2:7000"]).map_err(easyraftctl::error::CtlError::Usage)?,
//!     connect_timeout: Duration::from_secs(2),
//!     timeout: Duration::from_secs(5),
//!     deadline: Duration::from_secs(15),
//!     admin_token: None,
//!     cacert: None,
//!     protocol: easyraft_client::client::Protocol::Http,
//! })?;
//! let reply = client.call(&kv::put("greeting", "hello")).await?;
//! let report = kv::written("greeting", &reply, "kv_put")?;
//! print!("{}", report.table.render());
//! # Ok(()) }
//! ```
//!
//! From a shell:
//!
//! ```text
//! $ export EASYRAFT_ENDPOINTS=10.0.0.1:7000,10.0.0.2:7000,10.0.0.3:7000
//! $ easyraftctl kv put greeting hello
//! KEY       PREVIOUS  INDEX
//! greeting  -         12
//! $ easyraftctl kv cas greeting --expected hello --new bye
//! $ easyraftctl lock acquire job --owner worker-1 --ttl 30s --wait 5s
//! $ easyraftctl config watch app/ --count 1 -o json
//! $ easyraftctl --admin-token-file /etc/easyraft/admin.token member list
//! $ easyraftctl cluster status
//! $ easyraftctl --admin-token-file /etc/easyraft/admin.token snapshot save backup.snap
//! ```
//!
//! # Commands
//!
//! `kv put|get|del|cas|scan`, `lock acquire|renew|release|holder`, `config
//! set|get|del|rollback|history|watch`, `member list|add|promote|remove|replace`, `leader
//! transfer`, `cluster status|health`, `snapshot save FILE|take`. Member, leader and
//! snapshot commands send the admin token (`--admin-token`, else
//! `--admin-token-file`, else `EASYRAFT_ADMIN_TOKEN`); `cluster status` uses it, when
//! given, to add the members that `admin_members` lists to the endpoints asked.
//!
//! # Exit codes
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | done |
//! | 1 | the cluster refused or failed the request (a JSON-RPC error not retried, retries out of time, a malformed answer), or a local file error |
//! | 2 | bad usage |
//! | 3 | no endpoint reachable (every endpoint refused the connection or timed out connecting) |
//! | 4 | a write's outcome is unknown: it may or may not have been applied (-32021, or no answer after sending, for a write that is not idempotent) |
//! | 5 | answered "no": a CAS that did not swap, a lock not granted / not held, a node not healthy |
//!
//! # Retries and redirects
//!
//! See [`policy`]: endpoints are tried in turn on connection failures; -32020 hints
//! (`data.address`, the leader's client address) are followed; -32022, -32023 and
//! -32024 are retried with a capped exponential backoff until `--deadline`; -32021
//! and a lost answer are retried only for idempotent calls ([`policy::CallKind`]).
//!
//! `https://` endpoints (feature `tls`, on by default) are verified against the CA
//! certificates of `--cacert FILE` (PEM); the system's roots are not used.

pub mod cli;
pub mod cmd;
pub mod error;
pub mod output;
pub mod run;

pub use easyraft_client::{client, endpoint, http, policy};
