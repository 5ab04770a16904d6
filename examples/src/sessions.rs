//! The client sessions' methods: `session_open`, `session_keepalive` and
//! `session_close` (docs/server-api.md, "Sessions"), over any machine that keeps
//! sessions ([`KeepsSessions`]). A write carries its session in its `session` param
//! ([`crate::api::Stamp`]); these methods manage the sessions themselves, each through
//! the log, so every member agrees which sessions are open.

use std::sync::Arc;

use easyraft::cluster::sessions::{SessionCommand, SessionResponse, Sessions};
use easyraft::StateMachine;
use jsonrpsee::types::{ErrorObjectOwned, Params};
use jsonrpsee::RpcModule;
use serde_json::{json, Value};

use crate::api::{bad, field, now_ms, session_error, Node};

/// A state machine that keeps client sessions: [`Sessions`] around a service, or a
/// machine that embeds a [`SessionTable`](easyraft::cluster::sessions::SessionTable)
/// (as `easyraft-server`'s does).
pub trait KeepsSessions: StateMachine {
    /// The commands a session carries.
    type Inner: Send + 'static;
    /// A session command as one of this machine's.
    fn session_command(command: SessionCommand<Self::Inner>) -> Self::Command;
    /// The answer to an open, keep-alive or close (`None`: another kind of answer).
    fn session_answer(response: Self::Response) -> Option<SessionResponse<()>>;
}

impl<S: StateMachine> KeepsSessions for Sessions<S>
where
    S::Response: Clone + serde::Serialize + serde::de::DeserializeOwned,
{
    type Inner = S::Command;
    fn session_command(command: SessionCommand<S::Command>) -> SessionCommand<S::Command> {
        command
    }
    fn session_answer(response: SessionResponse<S::Response>) -> Option<SessionResponse<()>> {
        without_applied(response)
    }
}

/// The answer of an open, keep-alive or close, which carries no command's response.
pub fn without_applied<R>(response: SessionResponse<R>) -> Option<SessionResponse<()>> {
    match response {
        SessionResponse::Registered(id) => Some(SessionResponse::Registered(id)),
        SessionResponse::Done => Some(SessionResponse::Done),
        SessionResponse::Refused(e) => Some(SessionResponse::Refused(e)),
        SessionResponse::Applied(_) => None,
    }
}

/// Proposes a session command and returns its answer.
async fn run<M: KeepsSessions>(
    node: &Node<M>,
    command: SessionCommand<M::Inner>,
) -> Result<SessionResponse<()>, ErrorObjectOwned> {
    let r = node
        .handle()
        .propose(M::session_command(command))
        .await
        .map_err(|e| node.error(e))?;
    match M::session_answer(r) {
        Some(SessionResponse::Refused(e)) => Err(session_error(e)),
        Some(r) => Ok(r),
        None => Err(bad("a session command was answered as another command")),
    }
}

/// The session methods over `node`.
pub fn rpc_for<M: KeepsSessions>(node: Node<M>) -> RpcModule<Node<M>> {
    let mut m = RpcModule::new(node);
    let _ = m.register_async_method(
        "session_open",
        |_params: Params<'static>, node: Arc<Node<M>>, _| async move {
            match run(&node, SessionCommand::Register { at_ms: now_ms() }).await? {
                SessionResponse::Registered(id) => Ok::<_, ErrorObjectOwned>(json!({ "session": id })),
                _ => Err(bad("session_open was answered as another command")),
            }
        },
    );
    let _ = m.register_async_method(
        "session_keepalive",
        |params: Params<'static>, node: Arc<Node<M>>, _| async move {
            let p: Value = params.parse()?;
            let session = field(&p, "session")?;
            run(
                &node,
                SessionCommand::KeepAlive {
                    session,
                    at_ms: now_ms(),
                },
            )
            .await?;
            Ok::<_, ErrorObjectOwned>(json!({ "session": session }))
        },
    );
    let _ = m.register_async_method(
        "session_close",
        |params: Params<'static>, node: Arc<Node<M>>, _| async move {
            let p: Value = params.parse()?;
            let session = field(&p, "session")?;
            run(
                &node,
                SessionCommand::Close {
                    session,
                    at_ms: now_ms(),
                },
            )
            .await?;
            Ok::<_, ErrorObjectOwned>(json!({ "session": session, "closed": true }))
        },
    );
    m
}
