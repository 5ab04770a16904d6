//! The script: a run's steps in their order, over the transport the setup chose.
//! Steps 1 to 5 are in `failover`, 6 and 7 in `partition`, 8 in `verify`.

use easyraft::prelude::*;
use easyraft::Transport;

use super::options::{DemoTransport, Report};
use super::scene::{Scene, Setup};
use crate::error::TaskError;

/// The whole scenario over the transport `transport` builds for each node.
pub(super) async fn run_on<T: Transport>(
    setup: Setup,
    transport: impl Fn(&NodeId) -> T + Send + Sync + 'static,
) -> Result<Report, TaskError> {
    let opts = &setup.opts;
    let ui = opts.ui;
    let n = opts.nodes;
    let scene = Scene {
        ui,
        opts,
        n,
        jsonrpc: opts.transport == DemoTransport::JsonRpc,
        ids: &setup.ids,
        ports: &setup.ports,
        token: &setup.token,
    };

    println!(
        "{}",
        ui.bold(&format!(
            "easyraft demo: a {n}-node Raft cluster over {} on 127.0.0.1",
            opts.transport.title()
        ))
    );

    let mut cluster = scene.start(&setup.data, &setup.discoveries, transport).await?;
    let leader = scene.elect(&cluster).await?;
    let mut acked = scene.replicate(&cluster, &leader).await?;
    let (old, leader) = scene.kill_leader(&mut cluster, &leader, &mut acked).await?;
    scene.restart_from_disk(&mut cluster, &old, &leader, &acked).await?;
    let cut = scene.partition(&cluster, &setup.relays, &mut acked).await?;
    scene.heal(&setup.relays, &cut).await?;
    scene.conclude(cluster, setup.started, &cut, &acked).await
}
