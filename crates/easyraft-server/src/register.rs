//! Keeping this node's addresses in the replicated directory: proposed while it leads,
//! else sent to the leader (`directory_register`) once its client address is known.

use std::time::Duration;

use easyraft::RaftHandle;
use serde_json::json;
use tracing::{debug, info};

use crate::client::Caller;
use crate::directory::{Directory, DirectoryCommand, MemberAddress};
use crate::machine::{ServerCommand, ServerMachine};

/// Keeps this node's addresses in the directory: proposes them when it leads, else
/// asks the leader (`directory_register`) once the leader's client address is known.
pub(crate) async fn register(
    handle: RaftHandle<ServerMachine>,
    directory: Directory,
    me: MemberAddress,
    token: Option<String>,
    caller: Caller,
) {
    let id = handle.id().to_string();
    loop {
        if directory.members().get(&id) == Some(&me) {
            tokio::time::sleep(Duration::from_secs(2)).await;
            continue;
        }
        let view = handle.view();
        let outcome = match &view.leader {
            Some(l) if l == handle.id() => handle
                .propose(ServerCommand::Directory(DirectoryCommand::Set(id.clone(), me.clone())))
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Some(l) => match directory.client(l.as_str()) {
                Some(addr) => {
                    let p = json!({ "id": id, "peer": me.peer, "client": me.client });
                    caller
                        .call(&addr, "directory_register", &p, token.as_deref())
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }
                None => Err("the leader's client address is not known yet".into()),
            },
            None => Err("no leader yet".into()),
        };
        match outcome {
            Ok(()) => info!(%id, "addresses recorded in the directory"),
            Err(e) => {
                debug!(%id, error = %e, "addresses not recorded yet");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
