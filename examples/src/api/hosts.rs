//! [`Hosts`]: a state machine that carries a service, so the service's API runs over
//! the service's own machine, over it in client sessions, or over a machine that
//! combines several services.

use easyraft::cluster::sessions::{SessionCommand, SessionResponse, Sessions};
use easyraft::StateMachine;

use super::stamp::Stamp;

/// A state machine that carries service `S`: `S` itself, or a machine combining several
/// services. The services' `rpc` functions ([`crate::kv::rpc`], ...) work over any
/// `M: Hosts<S>`, wrapping `S`'s commands and queries into `M`'s and unwrapping the
/// answers.
pub trait Hosts<S: StateMachine>: StateMachine {
    /// `S`'s command as one of this machine's.
    fn wrap_command(command: S::Command) -> Self::Command;
    /// The response to one of `S`'s commands (`None`: the answer of another service,
    /// which is a bug of the combined machine).
    fn unwrap_response(response: Self::Response) -> Option<S::Response>;
    /// `S`'s query as one of this machine's.
    fn wrap_query(query: S::Query) -> Self::Query;
    /// The answer to one of `S`'s queries (`None`: another service's answer, a bug).
    fn unwrap_answer(answer: Self::QueryResponse) -> Option<S::QueryResponse>;
    /// `S`'s command within a client session, stamped `at_ms` by the proposing node;
    /// `None` (the default): this machine keeps no sessions.
    fn wrap_in_session(command: S::Command, stamp: Stamp, at_ms: u64) -> Option<Self::Command> {
        let _ = (command, stamp, at_ms);
        None
    }
    /// The answer to a command from [`wrap_in_session`](Self::wrap_in_session)
    /// (`None`: not such an answer, a bug).
    fn unwrap_in_session(response: Self::Response) -> Option<SessionResponse<S::Response>> {
        let _ = response;
        None
    }
}

impl<S: StateMachine> Hosts<S> for S {
    fn wrap_command(command: S::Command) -> S::Command {
        command
    }
    fn unwrap_response(response: S::Response) -> Option<S::Response> {
        Some(response)
    }
    fn wrap_query(query: S::Query) -> S::Query {
        query
    }
    fn unwrap_answer(answer: S::QueryResponse) -> Option<S::QueryResponse> {
        Some(answer)
    }
}

/// A machine wrapped in client sessions carries its own service: writes with a
/// `session` param run in that session, writes without one as
/// [`SessionCommand::Direct`].
impl<S: StateMachine> Hosts<S> for Sessions<S>
where
    S::Response: Clone + serde::Serialize + serde::de::DeserializeOwned,
{
    fn wrap_command(command: S::Command) -> SessionCommand<S::Command> {
        SessionCommand::Direct(command)
    }
    fn unwrap_response(response: SessionResponse<S::Response>) -> Option<S::Response> {
        match response {
            SessionResponse::Applied(r) => Some(r),
            _ => None,
        }
    }
    fn wrap_query(query: S::Query) -> S::Query {
        query
    }
    fn unwrap_answer(answer: S::QueryResponse) -> Option<S::QueryResponse> {
        Some(answer)
    }
    fn wrap_in_session(command: S::Command, stamp: Stamp, at_ms: u64) -> Option<SessionCommand<S::Command>> {
        Some(stamp.command(command, at_ms))
    }
    fn unwrap_in_session(response: SessionResponse<S::Response>) -> Option<SessionResponse<S::Response>> {
        Some(response)
    }
}
