//! The queue's JSON-RPC API: `queue_create`, `queue_enqueue`, `queue_poll`,
//! `queue_commit`, `queue_info` and `queue_read`, over any state machine that carries
//! the queue.

use std::sync::Arc;

use jsonrpsee::types::{ErrorObject, ErrorObjectOwned, Params};
use jsonrpsee::RpcModule;
use serde_json::{json, Value};

use super::commands::{
    Batch, QueueAnswer, QueueCommand, QueueError, QueueQuery, QueueResult, QueueWritten, Retention, TopicInfo,
};
use super::limits::{
    DEFAULT_MAX_BYTES, DEFAULT_MAX_MESSAGES, LIMIT_MAX_BYTES, LIMIT_MAX_MESSAGES, MAX_LEASE_MS, MAX_MESSAGE_BYTES,
    MAX_POLL,
};
use super::machine::{check_name, Queue};
use crate::api::{bad, count_param, field, flag_param, now_ms, Hosts, Node, BAD_REQUEST};

/// A refusal as a JSON-RPC error: `-32602` (do not retry as is) with the
/// [`QueueError`] as `data` (`reason` and its fields).
pub(super) fn refused(e: QueueError) -> ErrorObjectOwned {
    let data = serde_json::to_value(&e).unwrap_or(Value::Null);
    ErrorObject::owned(BAD_REQUEST, e.to_string(), Some(data))
}

fn name(p: &Value, key: &'static str) -> Result<String, ErrorObjectOwned> {
    let s: String = field(p, key)?;
    check_name(key, &s).map_err(refused)?;
    Ok(s)
}

fn messages_json(b: &Batch) -> Vec<Value> {
    (b.start..)
        .zip(&b.messages)
        .map(|(offset, m)| json!({"offset": offset, "message": m}))
        .collect()
}

fn written(r: QueueResult) -> Result<Value, ErrorObjectOwned> {
    Ok(match r.map_err(refused)? {
        QueueWritten::Created { created, retention } => json!({
            "created": created, "max_messages": retention.max_messages, "max_bytes": retention.max_bytes,
        }),
        QueueWritten::Enqueued { offset, index, first } => json!({"offset": offset, "index": index, "first": first}),
        QueueWritten::Delivered(d) => json!({
            "messages": messages_json(&d.batch),
            "committed": d.committed,
            "first": d.batch.first,
            "next": d.batch.next,
            // Messages retention dropped before the group consumed them.
            "lost": d.batch.first.saturating_sub(d.committed),
            "expires_at": d.expires_at,
        }),
        QueueWritten::Committed { offset } => json!({ "committed": offset }),
    })
}

fn info_json(topic: &str, i: &TopicInfo) -> Value {
    let groups: serde_json::Map<String, Value> = i
        .groups
        .iter()
        .map(|(name, g)| {
            let v = json!({"committed": g.committed, "owner": g.owner, "expires_at": g.expires_at});
            (name.clone(), v)
        })
        .collect();
    json!({
        "topic": topic, "first": i.first, "next": i.next, "bytes": i.bytes,
        "max_messages": i.retention.max_messages, "max_bytes": i.retention.max_bytes, "groups": groups,
    })
}

fn no_topic(topic: String) -> ErrorObjectOwned {
    refused(QueueError::NoSuchTopic { topic })
}

/// The queue API: `queue_create {topic, max_messages?, max_bytes?}` (or change a
/// topic's retention), `queue_enqueue {topic, message}` → `{offset, index, first}`,
/// `queue_poll {topic, group, consumer, max?, lease_ms?}` → `{messages: [{offset,
/// message}], committed, first, next, lost, expires_at}`, `queue_commit {topic, group,
/// consumer, offset}` → `{committed}`, and the linearizable reads (`stale: true` reads
/// this node's state) `queue_info {topic}` and `queue_read {topic, offset?, max?}`.
/// Refusals are `-32602` with the [`QueueError`] in `data` (`reason`: `lease_held`,
/// `not_owner`, `commit_backwards`, ...).
pub fn rpc(node: Node<Queue>) -> RpcModule<Node<Queue>> {
    rpc_for(node)
}

/// [`rpc`] over any state machine that carries the queue (see [`Hosts`]).
pub fn rpc_for<M: Hosts<Queue>>(node: Node<M>) -> RpcModule<Node<M>> {
    let mut m = RpcModule::new(node);
    let _ = m.register_async_method(
        "queue_create",
        |params: Params<'static>, node: Arc<Node<M>>, _| async move {
            let p: Value = params.parse()?;
            let retention = Retention {
                max_messages: count_param(&p, "max_messages", DEFAULT_MAX_MESSAGES, LIMIT_MAX_MESSAGES)?,
                max_bytes: count_param(&p, "max_bytes", DEFAULT_MAX_BYTES, LIMIT_MAX_BYTES)?,
            };
            let cmd = QueueCommand::Create {
                topic: name(&p, "topic")?,
                retention,
                now_ms: now_ms(),
            };
            written(node.propose::<Queue>(&p, cmd).await?)
        },
    );
    let _ = m.register_async_method(
        "queue_enqueue",
        |params: Params<'static>, node: Arc<Node<M>>, _| async move {
            let p: Value = params.parse()?;
            let topic = name(&p, "topic")?;
            let message: String = field(&p, "message")?;
            if message.len() > MAX_MESSAGE_BYTES {
                return Err(refused(QueueError::MessageTooLarge {
                    bytes: message.len() as u64,
                    limit: MAX_MESSAGE_BYTES as u64,
                }));
            }
            let cmd = QueueCommand::Enqueue {
                topic,
                message,
                now_ms: now_ms(),
            };
            written(node.propose::<Queue>(&p, cmd).await?)
        },
    );
    let _ = m.register_async_method(
        "queue_poll",
        |params: Params<'static>, node: Arc<Node<M>>, _| async move {
            let p: Value = params.parse()?;
            let cmd = QueueCommand::Poll {
                topic: name(&p, "topic")?,
                group: name(&p, "group")?,
                consumer: name(&p, "consumer")?,
                max: count_param(&p, "max", 100, MAX_POLL)?,
                lease_ms: count_param(&p, "lease_ms", 30_000, MAX_LEASE_MS)?,
                now_ms: now_ms(),
            };
            // Never in a session: a poll is safe to repeat (it delivers again from the
            // committed offset), and a session would keep every delivered batch.
            written(node.propose::<Queue>(&Value::Null, cmd).await?)
        },
    );
    let _ = m.register_async_method(
        "queue_commit",
        |params: Params<'static>, node: Arc<Node<M>>, _| async move {
            let p: Value = params.parse()?;
            let cmd = QueueCommand::Commit {
                topic: name(&p, "topic")?,
                group: name(&p, "group")?,
                consumer: name(&p, "consumer")?,
                offset: field(&p, "offset")?,
                now_ms: now_ms(),
            };
            written(node.propose::<Queue>(&p, cmd).await?)
        },
    );
    let _ = m.register_async_method(
        "queue_info",
        |params: Params<'static>, node: Arc<Node<M>>, _| async move {
            let p: Value = params.parse()?;
            let topic = name(&p, "topic")?;
            let q = QueueQuery::Info {
                topic: topic.clone(),
                now_ms: now_ms(),
            };
            match node.query::<Queue>(q, flag_param(&p, "stale")?).await? {
                QueueAnswer::Info(Some(i)) => Ok(info_json(&topic, &i)),
                QueueAnswer::Info(None) => Err(no_topic(topic)),
                _ => Err(bad("unexpected answer")),
            }
        },
    );
    let _ = m.register_async_method(
        "queue_read",
        |params: Params<'static>, node: Arc<Node<M>>, _| async move {
            let p: Value = params.parse()?;
            let topic = name(&p, "topic")?;
            let offset: u64 = match p.get("offset") {
                None | Some(Value::Null) => 0,
                Some(_) => field(&p, "offset")?,
            };
            let q = QueueQuery::Read {
                topic: topic.clone(),
                offset,
                max: count_param(&p, "max", 100, MAX_POLL)?,
            };
            match node.query::<Queue>(q, flag_param(&p, "stale")?).await? {
                QueueAnswer::Messages(Some(b)) => Ok(json!({
                    "messages": messages_json(&b), "first": b.first, "next": b.next,
                })),
                QueueAnswer::Messages(None) => Err(no_topic(topic)),
                _ => Err(bad("unexpected answer")),
            }
        },
    );
    m
}
