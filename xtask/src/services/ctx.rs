//! What a service's scenario works with ([`Ctx`]): the cluster, the client, the
//! checks so far, and the steps every service takes alike (the leader, a kill, a new
//! leader, a restart).

use easyraft::{RaftHandle, StateMachine};
use examples::runner::LocalCluster;

use super::options::ServiceOptions;
use super::rpc::Rpc;
use crate::demo::common::{await_new_leader, catch_up, restart_retrying, WAIT};
use crate::error::TaskError;
use crate::ui::{secs, Ui};

/// The services demo's steps.
pub(crate) const STEPS: usize = 6;

/// A service's steps 3 to 6; its `Ok` is the verdict's summary.
pub(crate) type Outcome<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, TaskError>> + 'a>>;
pub(super) type Scenario<SM> = fn(&mut Ctx<SM>) -> Outcome<'_>;

/// What a scenario works with.
pub(crate) struct Ctx<SM: StateMachine> {
    pub(crate) ui: Ui,
    pub(crate) opts: ServiceOptions,
    pub(crate) local: LocalCluster<SM>,
    pub(crate) rpc: Rpc,
    pub(super) checks: Vec<(String, bool)>,
}

impl<SM: StateMachine + Default> Ctx<SM> {
    /// Records a check and prints it.
    pub(crate) fn check(&mut self, ok: bool, what: impl Into<String>) -> bool {
        let what = what.into();
        if ok {
            self.ui.ok(&what);
        } else {
            self.ui.bad(&what);
        }
        self.checks.push((what, ok));
        ok
    }

    /// The current leader (waiting for one).
    pub(crate) async fn leader(&self) -> Result<RaftHandle<SM>, TaskError> {
        let l = self.local.cluster.wait_for_leader(WAIT).await?;
        self.rpc.set_leader(l.id().as_str());
        Ok(l)
    }

    /// The running nodes other than `id`.
    pub(crate) fn others(&self, id: &str) -> Vec<String> {
        self.local
            .cluster
            .nodes()
            .map(|h| h.id().to_string())
            .filter(|n| n != id)
            .collect()
    }

    /// Kills `id` like a crash (its task aborted where it stands).
    pub(crate) async fn kill(&mut self, id: &str) {
        self.local.kill(id).await;
        self.ui.line(format!(
            "killed {id}: its task aborted where it stood, like a crash; nothing flushed"
        ));
    }

    /// Waits for the survivors to elect a leader after `old` (of term `old_term`) died.
    pub(crate) async fn new_leader(&self, old: &str, old_term: u64) -> Result<RaftHandle<SM>, TaskError> {
        let (leader, took) = await_new_leader(&self.ui, &self.local.cluster).await?;
        self.ui.ok(format!(
            "{} elected for term {} after {} (the dead leader {old}'s term was {old_term})",
            leader.id(),
            leader.view().term,
            secs(took)
        ));
        self.rpc.set_leader(leader.id().as_str());
        Ok(leader)
    }

    /// Step 5: restarts `id` from its data directory and waits until it caught up.
    pub(crate) async fn restart(&mut self, id: &str) -> Result<(), TaskError> {
        self.ui.step(5, STEPS, &format!("Restart {id} from its data directory"));
        let target = self.leader().await?.view().commit;
        let local = &mut self.local;
        restart_retrying(id, async || local.restart(id).await).await?;
        let back = self
            .local
            .cluster
            .node(id)
            .cloned()
            .ok_or_else(|| format!("{id} is not running"))?;
        catch_up(&self.ui, id, &back, target).await?;
        Ok(())
    }
}
