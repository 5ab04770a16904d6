//! The command line (clap).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::output::Format;

/// The exit codes, shown by `--help`.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  done
  1  the cluster refused or failed the request (or a local file error)
  2  bad usage
  3  no endpoint reachable
  4  a write's outcome is unknown (it may or may not have been applied)
  5  answered \"no\": a CAS that did not swap, a lock not granted or not held,
     a node not healthy

Environment: EASYRAFT_ENDPOINTS (as --endpoints), EASYRAFT_ADMIN_TOKEN (as
--admin-token; the flag, then --admin-token-file, win over it).";

/// easyraftctl: talk to an easyraft cluster (kv, lock, config, members, snapshots).
#[derive(Parser, Debug)]
#[command(name = "easyraftctl", version, after_help = EXIT_CODES, args_override_self = true)]
pub struct Cli {
    /// Members' client addresses (host:port, http://host:port or https://host:port), comma-separated;
    /// tried in turn, leader hints followed.
    #[arg(
        long,
        global = true, help_heading = "Global options",
        env = "EASYRAFT_ENDPOINTS",
        value_delimiter = ',',
        action = clap::ArgAction::Set,
        default_value = "127.0.0.1:7000"
    )]
    pub endpoints: Vec<String>,
    /// Output format.
    #[arg(
        long,
        short = 'o',
        global = true,
        help_heading = "Global options",
        value_enum,
        default_value = "table"
    )]
    pub output: Format,
    /// The admin token (for member, leader, cluster and snapshot commands).
    #[arg(long, global = true, help_heading = "Global options")]
    pub admin_token: Option<String>,
    /// A file holding the admin token (a trailing newline is ignored).
    #[arg(long, global = true, help_heading = "Global options")]
    pub admin_token_file: Option<PathBuf>,
    /// CA certificates (PEM) for https:// endpoints.
    #[arg(long, global = true, help_heading = "Global options")]
    pub cacert: Option<PathBuf>,
    /// TCP connect timeout per endpoint (e.g. 500ms, 2s).
    #[arg(long, global = true, help_heading = "Global options", default_value = "2s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// Timeout of one call to one endpoint.
    #[arg(long, global = true, help_heading = "Global options", default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// How long all the tries of a command may take (redirects, retries).
    #[arg(long, global = true, help_heading = "Global options", default_value = "15s", value_parser = parse_duration)]
    pub deadline: Duration,
    /// How calls travel: `http` (JSON-RPC, one HTTP request per call) or `stream` (the
    /// binary stream, `GET /v1/stream`, one WebSocket connection per member).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_enum,
        default_value = "http"
    )]
    pub protocol: ProtocolArg,
    /// Log what is tried on stderr (-v: debug, -vv: trace).
    #[arg(short, long, global = true, help_heading = "Global options", action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// `--protocol`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolArg {
    /// JSON-RPC over HTTP/1.1.
    Http,
    /// The binary stream.
    Stream,
}

impl From<ProtocolArg> for easyraft_client::client::Protocol {
    fn from(p: ProtocolArg) -> Self {
        match p {
            ProtocolArg::Http => easyraft_client::client::Protocol::Http,
            ProtocolArg::Stream => easyraft_client::client::Protocol::Stream,
        }
    }
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// The key-value store.
    #[command(subcommand)]
    Kv(Kv),
    /// Distributed locks with fencing tokens.
    #[command(subcommand)]
    Lock(Lock),
    /// The configuration center: versioned keys, history and watches.
    #[command(subcommand)]
    Config(Config),
    /// Membership (admin token).
    #[command(subcommand)]
    Member(Member),
    /// Leadership (admin token).
    #[command(subcommand)]
    Leader(Leader),
    /// One table for all nodes: /status and /health of every endpoint and member.
    #[command(subcommand)]
    Cluster(ClusterCmd),
    /// Backups (admin token).
    #[command(subcommand)]
    Snapshot(Snapshot),
}

/// `kv`.
#[derive(Subcommand, Debug)]
pub enum Kv {
    /// Sets KEY to VALUE.
    Put {
        /// The key.
        key: String,
        /// The value.
        #[arg(allow_hyphen_values = true)]
        value: String,
    },
    /// Reads KEY (linearizable unless --stale).
    Get {
        /// The key.
        key: String,
        /// Answer from the node asked, at once (may miss acknowledged writes).
        #[arg(long)]
        stale: bool,
    },
    /// Deletes KEY.
    Del {
        /// The key.
        key: String,
    },
    /// Compare-and-swap: sets KEY only if its value is as expected (exit 5 if not).
    Cas(Cas),
    /// Lists the keys starting with PREFIX, in order.
    Scan {
        /// The prefix (all keys when absent).
        #[arg(default_value = "")]
        prefix: String,
        /// The most pairs to return (server default 1000, at most 10000).
        #[arg(long)]
        limit: Option<u64>,
    },
}

/// `kv cas`.
#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("expect").required(true).args(["expected", "expect_absent"])))]
#[command(group(clap::ArgGroup::new("to").required(true).args(["new", "delete"])))]
pub struct Cas {
    /// The key.
    pub key: String,
    /// The value KEY must have now.
    #[arg(long, allow_hyphen_values = true)]
    pub expected: Option<String>,
    /// KEY must be absent now.
    #[arg(long)]
    pub expect_absent: bool,
    /// The value to set.
    #[arg(long, allow_hyphen_values = true)]
    pub new: Option<String>,
    /// Delete KEY instead of setting it.
    #[arg(long)]
    pub delete: bool,
}

/// `lock`.
#[derive(Subcommand, Debug)]
pub enum Lock {
    /// Takes NAME for --ttl if free (waiting up to --wait); prints the fencing token.
    Acquire {
        /// The lock.
        name: String,
        /// Who takes it.
        #[arg(long)]
        owner: String,
        /// How long the grant lasts.
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        ttl: Duration,
        /// How long to wait for it (at most 60s).
        #[arg(long, default_value = "0s", value_parser = parse_duration)]
        wait: Duration,
    },
    /// Extends a grant still held.
    Renew {
        /// The lock.
        name: String,
        /// The holder.
        #[arg(long)]
        owner: String,
        /// The grant's fencing token.
        #[arg(long)]
        token: u64,
        /// The new lease, from now.
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        ttl: Duration,
    },
    /// Gives the lock up.
    Release {
        /// The lock.
        name: String,
        /// The holder.
        #[arg(long)]
        owner: String,
        /// The grant's fencing token.
        #[arg(long)]
        token: u64,
    },
    /// Who holds NAME.
    Holder {
        /// The lock.
        name: String,
    },
}

/// `config`.
#[derive(Subcommand, Debug)]
pub enum Config {
    /// Sets KEY to VALUE; prints its new version.
    Set {
        /// The key.
        key: String,
        /// The value.
        #[arg(allow_hyphen_values = true)]
        value: String,
    },
    /// Reads KEY and its version (with --prefix: every key under KEY).
    Get {
        /// The key (or prefix).
        key: String,
        /// List every key starting with KEY.
        #[arg(long)]
        prefix: bool,
    },
    /// Deletes KEY.
    Del {
        /// The key.
        key: String,
    },
    /// Gives KEY (with --prefix: every key under KEY) the value it had at version --to,
    /// deleting what did not exist then, as one new version; prints the keys changed.
    Rollback {
        /// The key (or prefix).
        key: String,
        /// The version to go back to (see `config history`).
        #[arg(long)]
        to: u64,
        /// Roll back every key starting with KEY.
        #[arg(long)]
        prefix: bool,
    },
    /// The changes under PREFIX after --since, oldest first, with their versions.
    History {
        /// The prefix (all keys when absent).
        #[arg(default_value = "")]
        prefix: String,
        /// Only changes after this version.
        #[arg(long, default_value_t = 0)]
        since: u64,
    },
    /// Prints each change under PREFIX as it happens (one line each).
    Watch {
        /// The prefix (all keys when absent).
        #[arg(default_value = "")]
        prefix: String,
        /// Start after this version (default: the current version, so only new changes).
        #[arg(long)]
        from: Option<u64>,
        /// Stop after this many changes.
        #[arg(long)]
        count: Option<u64>,
        /// How long each watch call waits on the server (at most 120s).
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        poll: Duration,
    },
}

/// `member`.
#[derive(Subcommand, Debug)]
pub enum Member {
    /// The members, their roles, addresses, match index and lag.
    List,
    /// Adds a learner.
    Add {
        /// The new node's id.
        id: String,
        /// Its peer (Raft) address.
        #[arg(long)]
        peer: String,
        /// Its client address.
        #[arg(long)]
        client: Option<String>,
    },
    /// Promotes a learner to voter.
    Promote {
        /// The learner's id.
        id: String,
    },
    /// Removes a member.
    Remove {
        /// The member's id.
        id: String,
    },
    /// Replaces OLD by a new node: adds it as a learner, waits for it to catch up,
    /// promotes it, removes OLD.
    Replace {
        /// The member to replace.
        old: String,
        /// The new node's id.
        #[arg(long)]
        id: String,
        /// Its peer address.
        #[arg(long)]
        peer: String,
        /// Its client address.
        #[arg(long)]
        client: Option<String>,
    },
}

/// `leader`.
#[derive(Subcommand, Debug)]
pub enum Leader {
    /// Moves leadership to --to (or to the most caught-up voter).
    Transfer {
        /// The voter to hand leadership to.
        #[arg(long)]
        to: Option<String>,
    },
}

/// `cluster`.
#[derive(Subcommand, Debug)]
pub enum ClusterCmd {
    /// Every node's role, term, leader, commit and applied index, health.
    Status,
    /// Every node's health (exit 5 unless all are healthy).
    Health,
}

/// `snapshot`.
#[derive(Subcommand, Debug)]
pub enum Snapshot {
    /// Saves a consistent backup taken by the leader to FILE (written, fsynced, renamed).
    Save {
        /// Where to write it.
        file: PathBuf,
    },
    /// Has the node asked take a snapshot now (compacting its log); prints its index and term.
    Take,
    /// Has every member (the endpoints given and the members they list) take a snapshot
    /// and compact its log; prints what left each log. Exit 5 if some member could not.
    Compact,
}

/// Parses `250ms`, `5s`, `2m`, `1h` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected a duration like 500ms, 5s, 2m"))?;
    let ms = match unit {
        "ms" => Some(n),
        "" | "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (ms, s, m, h)")),
    };
    ms.map(Duration::from_millis).ok_or_else(|| format!("{s:?}: too long"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        for bad in ["", "s", "1.5s", "-1s", "3d", "99999999999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_command_line_is_consistent_and_cas_needs_both_sides() {
        Cli::command().debug_assert();
        let eps = |args: &[&str]| {
            let mut all = vec!["easyraftctl"];
            all.extend_from_slice(args);
            all.extend_from_slice(&["kv", "get", "k"]);
            Cli::try_parse_from(all).map(|c| c.endpoints)
        };
        assert_eq!(eps(&["--endpoints", "a:1,b:2"]).unwrap(), ["a:1", "b:2"]);
        // The last --endpoints wins (as with any flag given twice), it does not add up.
        assert_eq!(eps(&["--endpoints", "a:1", "--endpoints", "b:2"]).unwrap(), ["b:2"]);
        assert!(Cli::try_parse_from(["easyraftctl", "kv", "cas", "k", "--new", "v"]).is_err());
        assert!(Cli::try_parse_from(["easyraftctl", "kv", "cas", "k", "--expect-absent", "--new", "v"]).is_ok());
        assert!(Cli::try_parse_from([
            "easyraftctl",
            "kv",
            "cas",
            "k",
            "--expected",
            "a",
            "--expect-absent",
            "--delete"
        ])
        .is_err());
    }
}
