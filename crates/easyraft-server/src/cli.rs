//! The command line: `--config FILE`, `--print-config`, a flag per common key, and
//! `--set KEY=VALUE` for any other (`--set raft.election_timeout=300ms`).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{ConfigError, Origin, Override};

/// One easyraft node: the kv, lock and config services, an admin API, health, status
/// and metrics. Settings come from the file, then `EASYRAFT_…` variables, then flags.
#[derive(Parser, Debug)]
#[command(name = "easyraft-server", version)]
pub struct Args {
    /// What to do instead of running the node (on its stopped data directory).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The TOML configuration file (also `EASYRAFT_CONFIG`).
    #[arg(long, short = 'c', global = true)]
    pub config: Option<PathBuf>,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    pub print_config: bool,
    /// This node's id.
    #[arg(long)]
    pub id: Option<String>,
    /// Where the node keeps its state.
    #[arg(long)]
    pub data_dir: Option<String>,
    /// Where Raft traffic is accepted (`host:port`).
    #[arg(long)]
    pub listen_peer: Option<String>,
    /// The peer address other members reach this node at.
    #[arg(long)]
    pub advertise_peer: Option<String>,
    /// Where the client port listens (`host:port`).
    #[arg(long)]
    pub listen_client: Option<String>,
    /// The client address others are told.
    #[arg(long)]
    pub advertise_client: Option<String>,
    /// The cluster id.
    #[arg(long)]
    pub cluster_id: Option<String>,
    /// The founding members: `node1=host:peerport,node2=...` (bootstrap).
    #[arg(long)]
    pub initial_cluster: Option<String>,
    /// Where to find members: a raft-discovery URL.
    #[arg(long)]
    pub discovery: Option<String>,
    /// With `etcd://` or `dns+srv://` discovery: found the cluster once this many nodes
    /// registered.
    #[arg(long)]
    pub bootstrap_expect: Option<String>,
    /// Join a running cluster (a fresh node outside the bootstrap set): members'
    /// client addresses `host:port[,host:port...]`, or a discovery URL listing them
    /// (`dns+srv://_client._tcp.easyraft.default.svc.cluster.local`).
    #[arg(long)]
    pub join: Option<String>,
    /// With --join: take the place of this dead member (added, caught up, promoted,
    /// then the old one removed).
    #[arg(long)]
    pub replaces: Option<String>,
    /// Stay a learner after joining.
    #[arg(long)]
    pub learner: bool,
    /// Promote a joining learner once within this many entries of the leader.
    #[arg(long)]
    pub promote_lag: Option<String>,
    /// On SIGTERM, leave the cluster before exiting.
    #[arg(long)]
    pub leave_on_shutdown: bool,
    /// The services to serve: `kv,lock,config`.
    #[arg(long)]
    pub services: Option<String>,
    /// A file holding the peer (cluster) token.
    #[arg(long)]
    pub peer_token_file: Option<String>,
    /// A file holding the admin token.
    #[arg(long)]
    pub admin_token_file: Option<String>,
    /// Serve the admin API without a token (closed networks and tests only).
    #[arg(long)]
    pub admin_insecure: bool,
    /// Any key, dotted for sections: `--set raft.election_timeout=300ms`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// Disaster recovery on this node's stopped data directory (docs/operations.md).
#[derive(Subcommand, Debug, Clone)]
pub enum Command {
    /// Seed the empty `data_dir` from a backup (`easyraftctl snapshot save`) for a new
    /// cluster of the `initial_cluster` members; run on each, then start them.
    Restore {
        /// The backup file.
        #[arg(long)]
        from_snapshot: PathBuf,
    },
    /// UNSAFE: make this node the only voter of its log, keeping every entry it has,
    /// when a majority is lost for good. Entries it never received are lost; the old
    /// members must never return with their data.
    UnsafeRecover,
}

impl Args {
    /// The flags given, as overrides in a fixed order (`--set` last).
    pub fn overrides(&self) -> Result<Vec<Override>, ConfigError> {
        let mut out = Vec::new();
        let mut push = |key: &str, value: &Option<String>| {
            if let Some(v) = value {
                out.push(Override {
                    key: key.to_string(),
                    value: v.clone(),
                    origin: Origin::Flag(format!("--{}", key.replace('_', "-"))),
                });
            }
        };
        push("id", &self.id);
        push("data_dir", &self.data_dir);
        push("listen_peer", &self.listen_peer);
        push("advertise_peer", &self.advertise_peer);
        push("listen_client", &self.listen_client);
        push("advertise_client", &self.advertise_client);
        push("cluster_id", &self.cluster_id);
        push("initial_cluster", &self.initial_cluster);
        push("discovery", &self.discovery);
        push("bootstrap_expect", &self.bootstrap_expect);
        push("join", &self.join);
        push("replaces", &self.replaces);
        push("promote_lag", &self.promote_lag);
        push("services", &self.services);
        push("peer_token_file", &self.peer_token_file);
        push("admin_token_file", &self.admin_token_file);
        let on = Some("true".to_string());
        for (key, set) in [
            ("learner", self.learner),
            ("leave_on_shutdown", self.leave_on_shutdown),
            ("admin_insecure", self.admin_insecure),
        ] {
            if set {
                push(key, &on);
            }
        }
        for kv in &self.set {
            let (key, value) = kv.split_once('=').ok_or_else(|| ConfigError::Invalid {
                key: kv.clone(),
                reason: "--set takes KEY=VALUE".into(),
            })?;
            out.push(Override {
                key: key.trim().to_string(),
                value: value.to_string(),
                origin: Origin::Flag(format!("--set {key}")),
            });
        }
        Ok(out)
    }
}
