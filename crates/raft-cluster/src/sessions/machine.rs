//! [`Sessions`]: a state machine wrapped with a [`SessionTable`], applying each
//! (session, seq) once and keeping the table in its snapshots.

use std::io::{Read, Write};

use raft_core::LogIndex;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::command::{SessionCommand, SessionResponse};
use super::table::{SessionLimits, SessionTable};
use crate::error::BoxError;
use crate::state_machine::StateMachine;

/// Wraps a state machine with exactly-once client sessions (see the module docs).
#[derive(Debug)]
pub struct Sessions<SM: StateMachine> {
    inner: SM,
    table: SessionTable<SM::Response>,
}

/// The largest session table a snapshot may announce (bytes).
const MAX_TABLE_BYTES: u64 = 1 << 32;

impl<SM: StateMachine> Sessions<SM>
where
    SM::Response: Clone + Serialize + DeserializeOwned,
{
    /// Wraps `inner`.
    pub fn new(inner: SM, limits: SessionLimits) -> Self {
        Sessions {
            inner,
            table: SessionTable::new(limits),
        }
    }

    /// The wrapped machine.
    pub fn inner(&self) -> &SM {
        &self.inner
    }

    /// The session table.
    pub fn table(&self) -> &SessionTable<SM::Response> {
        &self.table
    }

    /// Sessions open now.
    pub fn open_sessions(&self) -> usize {
        self.table.open_sessions()
    }

    /// Responses kept, over all sessions.
    pub fn kept_responses(&self) -> usize {
        self.table.kept_responses()
    }
}

impl<SM: StateMachine> StateMachine for Sessions<SM>
where
    SM::Response: Clone + Serialize + DeserializeOwned,
{
    type Command = SessionCommand<SM::Command>;
    type Response = SessionResponse<SM::Response>;
    type Query = SM::Query;
    type QueryResponse = SM::QueryResponse;

    fn apply(&mut self, index: LogIndex, command: Self::Command) -> Self::Response {
        let inner = &mut self.inner;
        self.table.apply(index, command, |i, c| inner.apply(i, c))
    }

    fn query(&self, query: Self::Query) -> Self::QueryResponse {
        self.inner.query(query)
    }

    fn write_snapshot(&self, out: &mut dyn Write) -> Result<(), BoxError> {
        let table = self.table.encode()?;
        out.write_all(&(table.len() as u64).to_le_bytes())?;
        out.write_all(&table)?;
        self.inner.write_snapshot(out)
    }

    fn read_snapshot(&mut self, input: &mut dyn Read) -> Result<(), BoxError> {
        let mut len = [0u8; 8];
        input.read_exact(&mut len)?;
        let len = u64::from_le_bytes(len);
        if len > MAX_TABLE_BYTES {
            return Err(format!("a session table of {len} bytes, over the limit of {MAX_TABLE_BYTES}").into());
        }
        let mut bytes = Vec::new();
        input.take(len).read_to_end(&mut bytes)?;
        if bytes.len() as u64 != len {
            return Err(format!("the session table ends after {} of {len} bytes", bytes.len()).into());
        }
        // Decode into a copy first: the wrapped machine leaves its state as it was on
        // an error, and so does the table.
        let mut table = SessionTable::new(self.table.limits().clone());
        table.decode(&bytes)?;
        self.inner.read_snapshot(input)?;
        self.table = table;
        Ok(())
    }
}
