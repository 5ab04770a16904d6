//! `snapshot compact`: `admin_compact` on every member, one row each.
//!
//! `snapshot save FILE`: `GET /admin/snapshot` (admin token) streamed to `FILE.part`,
//! fsynced, renamed to `FILE`, and the directory fsynced, so `FILE` is either absent
//! or complete. A follower answers 307 to the leader's client address; that is
//! followed. The `X-Easyraft-Snapshot-Index` and `-Term` headers are reported.

use std::path::{Path, PathBuf};

use http_body_util::BodyExt;
use hyper::body::Bytes;
use hyper::Method;
use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::client::{parse_answer, snippet, Call, Client, Parsed};
use crate::cmd::{admin, cluster};
use crate::endpoint::Endpoint;
use crate::error::CtlError;
use crate::http::HttpError;
use crate::output::{Report, Table};
use crate::policy::CallKind;

/// The path asked.
pub const PATH: &str = "/admin/snapshot";
/// Redirects followed before giving up.
pub const MAX_REDIRECTS: u32 = 5;

/// Where a `Location` header sends the client: `http[s]://host:port/...`, or
/// `host:port` (reached the way `from` was).
pub fn redirect_target(location: &str, from: &Endpoint) -> Result<Endpoint, String> {
    let (scheme, rest) = match location.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, location),
    };
    let authority = rest.split('/').next().unwrap_or("");
    let target = match scheme {
        Some(scheme) => Endpoint::parse(&format!("{scheme}://{authority}")),
        None => Endpoint::parse_like(authority, from),
    };
    target.map_err(|e| format!("bad redirect {location:?}: {e}"))
}

/// The file written before the rename: `FILE.part` next to `FILE`.
pub fn part_path(file: &Path) -> PathBuf {
    let mut name = file.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".part");
    file.with_file_name(name)
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> CtlError + '_ {
    move |source| CtlError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Saves the snapshot; the endpoints are tried in turn on connection failures.
pub async fn save(client: &Client, file: &Path) -> Result<Report, CtlError> {
    let s = &client.settings;
    let mut unreachable = Vec::new();
    for first in &s.endpoints {
        let mut ep = first.clone();
        let mut redirects = 0;
        loop {
            let token = s.admin_token.as_deref();
            let opened = client
                .http
                .open(&ep, Method::GET, PATH, token, Bytes::new(), s.timeout)
                .await;
            let streaming = match opened {
                Ok(st) => st,
                Err(e @ (HttpError::Connect(_) | HttpError::Exchange(_))) => {
                    tracing::debug!(endpoint = %ep, error = %e, "snapshot: next endpoint");
                    unreachable.push((ep.to_string(), e.to_string()));
                    break;
                }
            };
            let status = streaming.response.status().as_u16();
            let header = |name: &str| {
                streaming
                    .response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            if matches!(status, 301 | 302 | 303 | 307 | 308) {
                let location = header("location").unwrap_or_default();
                redirects += 1;
                if redirects > MAX_REDIRECTS {
                    return Err(CtlError::Http {
                        endpoint: ep.to_string(),
                        what: PATH.into(),
                        status,
                        body: format!("more than {MAX_REDIRECTS} redirects (last to {location:?})"),
                    });
                }
                let to = redirect_target(&location, &ep).map_err(|reason| CtlError::BadAnswer {
                    endpoint: ep.to_string(),
                    what: PATH.into(),
                    reason,
                })?;
                tracing::debug!(from = %ep, to = %to, "snapshot: following the redirect to the leader");
                ep = to;
                continue;
            }
            if status != 200 {
                let body = streaming
                    .response
                    .into_body()
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                return Err(match parse_answer(&body) {
                    Some(Parsed::Error { code, message, data }) => CtlError::Rpc {
                        endpoint: ep.to_string(),
                        method: PATH.into(),
                        code,
                        message,
                        data,
                    },
                    _ => CtlError::Http {
                        endpoint: ep.to_string(),
                        what: PATH.into(),
                        status,
                        body: snippet(&body),
                    },
                });
            }
            let index = header("x-easyraft-snapshot-index").and_then(|v| v.parse::<u64>().ok());
            let term = header("x-easyraft-snapshot-term").and_then(|v| v.parse::<u64>().ok());
            let part = part_path(file);
            let written = stream_to(&part, streaming.response.into_body(), s.timeout, &ep).await;
            let bytes = match written {
                Ok(n) => n,
                Err(e) => {
                    let _ = tokio::fs::remove_file(&part).await;
                    return Err(e);
                }
            };
            tokio::fs::rename(&part, file).await.map_err(io(file))?;
            let dir = match file.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            };
            // The rename is durable once the directory is.
            std::fs::File::open(&dir).and_then(|d| d.sync_all()).map_err(io(&dir))?;
            let shown = file.display().to_string();
            let table = Table::new(&["FILE", "BYTES", "INDEX", "TERM", "FROM"]).row([
                shown.clone(),
                bytes.to_string(),
                index.map_or("-".into(), |i| i.to_string()),
                term.map_or("-".into(), |t| t.to_string()),
                ep.to_string(),
            ]);
            let json = json!({"file": shown, "bytes": bytes, "index": index, "term": term, "from": ep.to_string()});
            return Ok(Report::ok(json, table));
        }
    }
    Err(CtlError::Unreachable { attempts: unreachable })
}

/// `admin_compact {}` on one node: a snapshot there, its log compacted behind it.
pub fn compact_call() -> Call {
    Call::new("admin_compact", CallKind::IdempotentWrite, json!({})).admin()
}

/// Compacts every member's log: the endpoints given and the client addresses of the
/// members they list, each asked directly (compaction is per node). Exit 5 unless
/// every one compacted; if none did, the first one's error.
pub async fn compact(client: &Client) -> Result<Report, CtlError> {
    let members = match client.call(&admin::members()).await {
        Ok(reply) => admin::parse_members(&reply).ok(),
        Err(e @ CtlError::Unreachable { .. }) => return Err(e),
        Err(_) => None,
    };
    let targets = cluster::targets(&client.settings.endpoints, members.as_ref());
    let mut table = Table::new(&[
        "ENDPOINT",
        "ID",
        "INDEX",
        "TERM",
        "FIRST BEFORE",
        "FIRST",
        "REMOVED",
        "ERROR",
    ]);
    let mut rows = Vec::new();
    let mut failed = 0;
    let mut first_error = None;
    for ep in targets {
        let mut settings = client.settings.clone();
        settings.endpoints = vec![ep.clone()];
        let one = client.with_settings(settings);
        match one.call(&compact_call()).await {
            Ok(reply) => {
                let r = &reply.result;
                let f = |k: &str| crate::output::show(r.get(k));
                table.push([
                    ep.to_string(),
                    f("id"),
                    f("index"),
                    f("term"),
                    f("first_index_before"),
                    f("first_index"),
                    f("removed"),
                    "-".into(),
                ]);
                let mut row = r.clone();
                row["endpoint"] = json!(ep.to_string());
                rows.push(row);
            }
            Err(e) => {
                failed += 1;
                let dash = || "-".to_string();
                table.push([
                    ep.to_string(),
                    dash(),
                    dash(),
                    dash(),
                    dash(),
                    dash(),
                    dash(),
                    e.to_string(),
                ]);
                rows.push(json!({"endpoint": ep.to_string(), "error": e.to_string()}));
                first_error.get_or_insert(e);
            }
        }
    }
    // A member whose client address is not known yet cannot be asked: say so.
    for m in members.iter().flat_map(|m| &m.members).filter(|m| m.client.is_none()) {
        failed += 1;
        let dash = || "-".to_string();
        let why = "no client address known for this member".to_string();
        table.push([
            "-".into(),
            m.id.clone(),
            dash(),
            dash(),
            dash(),
            dash(),
            dash(),
            why.clone(),
        ]);
        rows.push(json!({"id": m.id, "error": why}));
    }
    if let (true, Some(e)) = (failed == rows.len(), first_error) {
        return Err(e);
    }
    Ok(Report::ok(json!({ "nodes": rows }), table).met_if(failed == 0))
}

/// Writes the body to `part` (truncating it), fsyncs it, and returns its length. Each
/// chunk must come within `idle`.
async fn stream_to(
    part: &Path,
    mut body: hyper::body::Incoming,
    idle: std::time::Duration,
    ep: &Endpoint,
) -> Result<u64, CtlError> {
    let mut f = tokio::fs::File::create(part).await.map_err(io(part))?;
    let mut n = 0u64;
    loop {
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => {
                return Err(CtlError::BadAnswer {
                    endpoint: ep.to_string(),
                    what: PATH.into(),
                    reason: format!("the stream stalled for {} ms after {n} bytes", idle.as_millis()),
                })
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Err(CtlError::BadAnswer {
                    endpoint: ep.to_string(),
                    what: PATH.into(),
                    reason: format!("the stream broke after {n} bytes: {e}"),
                })
            }
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            f.write_all(&data).await.map_err(io(part))?;
            n += data.len() as u64;
        }
    }
    f.flush().await.map_err(io(part))?;
    f.sync_all().await.map_err(io(part))?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_name_the_leader_and_the_part_file_sits_next_to_the_file() {
        let plain = Endpoint::parse("10.0.0.1:7000").unwrap();
        let secure = Endpoint::parse("https://10.0.0.1:7000").unwrap();
        let to = |l: &str, from: &Endpoint| redirect_target(l, from).map(|e| e.to_string());
        assert_eq!(
            to("http://10.0.0.2:7000/admin/snapshot", &secure),
            Ok("10.0.0.2:7000".into())
        );
        assert_eq!(to("10.0.0.2:7000", &plain), Ok("10.0.0.2:7000".into()));
        assert_eq!(to("10.0.0.2:7000", &secure), Ok("https://10.0.0.2:7000".into()));
        assert_eq!(to("https://a:1/x", &plain), Ok("https://a:1".into()));
        assert!(to("", &plain).is_err());
        assert!(to("ftp://a:1/", &plain).is_err());
        assert_eq!(part_path(Path::new("/b/snap.db")), PathBuf::from("/b/snap.db.part"));
        assert_eq!(part_path(Path::new("snap")), PathBuf::from("snap.part"));
    }
}
