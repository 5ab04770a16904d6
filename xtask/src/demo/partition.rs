//! Steps 6 and 7 of the script: a minority with the leader cut off the network, then
//! the network healed.

use std::time::Duration;

use easyraft::prelude::*;
use easyraft::Transport;

use super::client::{write_phase, Client};
use super::common::{wait_until, WAIT};
use super::scene::{Cut, DemoCluster, Scene, STEPS};
use super::status::status_table;
use crate::error::TaskError;
use crate::relay::Relays;
use crate::ui::secs;
use examples::kv::{KvCommand, KvQuery, KvStore as Kv};

impl Scene<'_> {
    /// 6. Partition.
    pub(super) async fn partition<T: Transport>(
        self,
        cluster: &DemoCluster<T>,
        relays: &Relays,
        acked: &mut Vec<(String, String)>,
    ) -> Result<Cut, TaskError> {
        let Scene {
            ui,
            opts,
            n,
            ids,
            ports,
            ..
        } = self;
        let leader = cluster.wait_for_leader(WAIT).await?;
        let minority_size = (n - 1) / 2;
        let mut minority: Vec<NodeId> = vec![leader.id().clone()];
        minority.extend(
            ids.iter()
                .filter(|id| *id != leader.id())
                .take(minority_size - 1)
                .cloned(),
        );
        let majority: Vec<NodeId> = ids.iter().filter(|id| !minority.contains(id)).cloned().collect();
        ui.step(6, STEPS, "Cut a minority (with the leader) off the network");
        let cut_term = leader.view().term;
        relays.cut(minority.iter().cloned());
        ui.line(format!(
            "cut {} off from {}: every connection across the cut is closed and new ones are refused",
            if minority.len() == 1 {
                format!("{} (the leader)", minority[0])
            } else {
                format!("{} (the leader) and {}", minority[0], list(&minority[1..]))
            },
            list(&majority)
        ));
        ui.note("all nodes keep running; the status table still comes from each node's handle");
        let handles: Vec<RaftHandle<Kv>> = cluster.nodes().cloned().collect();
        let side = |ids: &[NodeId]| -> Vec<RaftHandle<Kv>> {
            handles.iter().filter(|h| ids.contains(h.id())).cloned().collect()
        };
        let (minor, major) = (side(&minority), side(&majority));
        let (res, took) = ui
            .spin(
                || "waiting for the old leader to step down and the majority to elect".into(),
                wait_until(WAIT, || {
                    let stepped_down = minor.iter().all(|h| h.view().role != Role::Leader);
                    let elected = major.iter().find(|h| {
                        let v = h.view();
                        v.role == Role::Leader && v.term > cut_term
                    });
                    stepped_down
                        && elected.is_some_and(|l| {
                            let agree = major
                                .iter()
                                .filter(|h| h.view().leader.as_ref() == Some(l.id()))
                                .count();
                            agree * 2 > n
                        })
                }),
            )
            .await;
        res.map_err(|_| "the majority did not elect a new leader")?;
        let new_leader = major
            .iter()
            .find(|h| h.view().role == Role::Leader)
            .cloned()
            .ok_or("no leader on the majority side")?;
        ui.ok(format!(
            "{} stepped down (check-quorum: it no longer hears a majority)",
            leader.id()
        ));
        ui.ok(format!(
            "{} elected for term {} on the majority side after {}",
            new_leader.id(),
            new_leader.view().term,
            secs(took)
        ));
        let client = Client::new(major.iter(), new_leader.id());
        acked.extend(write_phase(&ui, &client, "split", opts.writes).await?);
        let cut_off = leader.clone();
        let mut stale_read = false;
        let write = tokio::time::timeout(
            Duration::from_millis(1500),
            cut_off.propose(KvCommand::Put {
                key: "split-minority".into(),
                value: "written on the cut-off side".into(),
            }),
        )
        .await;
        match write {
            Ok(Ok(_)) => {
                ui.bad(format!("a write on {} was acknowledged", cut_off.id()));
                acked.push(("split-minority".into(), "written on the cut-off side".into()));
            }
            Ok(Err(e)) => ui.ok(format!(
                "a write sent to the old leader {} is refused: {e}",
                cut_off.id()
            )),
            Err(_) => ui.ok(format!(
                "a write sent to the old leader {} is not acknowledged (no answer in 1.5 s)",
                cut_off.id()
            )),
        }
        let read = tokio::time::timeout(
            Duration::from_millis(1500),
            cut_off.read(KvQuery::Get("boot-000".into())),
        )
        .await;
        match read {
            Ok(Ok(_)) => {
                stale_read = true;
                ui.bad(format!(
                    "a linearizable read was served by the cut-off {}",
                    cut_off.id()
                ));
            }
            Ok(Err(e)) => ui.ok(format!(
                "a linearizable read on {} is refused ({e}): it serves no stale data",
                cut_off.id()
            )),
            Err(_) => ui.ok(format!(
                "a linearizable read on {} gets no answer in 1.5 s: it serves no stale data",
                cut_off.id()
            )),
        }
        let term_now = cut_off.view().term;
        if term_now == cut_term {
            ui.note(format!(
                "{}'s term is still {term_now}: pre-vote keeps a cut-off node from inflating terms",
                cut_off.id()
            ));
        }
        status_table(&ui, cluster, ids, ports).await;
        Ok(Cut {
            minority,
            handles,
            new_leader,
            stale_read,
        })
    }

    /// 7. Heal.
    pub(super) async fn heal(self, relays: &Relays, cut: &Cut) -> Result<(), TaskError> {
        let Scene { ui, .. } = self;
        let Cut {
            minority,
            handles,
            new_leader,
            ..
        } = cut;
        ui.step(7, STEPS, "Heal the network");
        relays.heal();
        let leader_id = new_leader.id().clone();
        let (res, took) = ui
            .spin(
                || format!("waiting for {} to rejoin and catch up", list(minority)),
                wait_until(WAIT, || {
                    let commit = new_leader.view().commit;
                    handles.iter().all(|h| {
                        let v = h.view();
                        v.leader.as_ref() == Some(&leader_id) && v.applied == commit
                    })
                }),
            )
            .await;
        res.map_err(|_| format!("{} did not rejoin", list(minority)))?;
        ui.ok(format!(
            "{} rejoined as follower{} of {leader_id} and caught up after {}",
            list(minority),
            if minority.len() > 1 { "s" } else { "" },
            secs(took)
        ));
        Ok(())
    }
}

fn list(ids: &[NodeId]) -> String {
    ids.iter().map(|i| i.as_str()).collect::<Vec<_>>().join(", ")
}
