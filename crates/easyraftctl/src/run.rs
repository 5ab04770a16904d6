//! From a parsed command line to reports: settings (endpoints, token), then the
//! command's calls.

use std::path::Path;

use crate::cli::{Cli, ClusterCmd, Command, Config, Kv, Leader, Lock, Member, Snapshot};
use crate::client::{Client, Settings};
use crate::cmd::{admin, cluster, config, kv, lock, parse, snapshot};
use crate::endpoint::Endpoint;
use crate::error::{CtlError, Exit};
use crate::output::{Report, Verdict};

/// The environment variable holding the admin token.
pub const ADMIN_TOKEN_ENV: &str = "EASYRAFT_ADMIN_TOKEN";

/// The admin token: `--admin-token`, else `--admin-token-file`, else `env` (the value
/// of [`ADMIN_TOKEN_ENV`]); both flags at once is a usage error.
pub fn admin_token(flag: Option<&str>, file: Option<&Path>, env: Option<String>) -> Result<Option<String>, CtlError> {
    match (flag, file) {
        (Some(_), Some(_)) => Err(CtlError::Usage(
            "--admin-token and --admin-token-file are exclusive".into(),
        )),
        (Some(t), None) => Ok(Some(t.to_string())),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|source| CtlError::Io {
                path: path.to_path_buf(),
                source,
            })?;
            let token = text.trim_end_matches(['\r', '\n']).to_string();
            if token.is_empty() {
                return Err(CtlError::Usage(format!(
                    "{}: the admin token file is empty",
                    path.display()
                )));
            }
            Ok(Some(token))
        }
        (None, None) => Ok(env.filter(|t| !t.is_empty())),
    }
}

/// The client settings the command line asks for.
pub fn settings(cli: &Cli) -> Result<Settings, CtlError> {
    let endpoints = Endpoint::parse_list(&cli.endpoints).map_err(|e| CtlError::Usage(format!("--endpoints: {e}")))?;
    let token = admin_token(
        cli.admin_token.as_deref(),
        cli.admin_token_file.as_deref(),
        std::env::var(ADMIN_TOKEN_ENV).ok(),
    )?;
    Ok(Settings {
        endpoints,
        connect_timeout: cli.connect_timeout,
        timeout: cli.timeout,
        deadline: cli.deadline,
        admin_token: token,
        cacert: cli.cacert.clone(),
        protocol: cli.protocol.into(),
    })
}

/// Runs `command`, handing each report to `emit` as it comes (a watch makes many);
/// returns [`Exit::NotMet`] if any report said "no", else [`Exit::Ok`].
pub async fn run(client: &Client, command: &Command, emit: &mut dyn FnMut(&Report)) -> Result<Exit, CtlError> {
    let mut verdict = Exit::Ok;
    let mut out = |r: Report| {
        if r.verdict == Verdict::NotMet {
            verdict = Exit::NotMet;
        }
        emit(&r);
    };
    match command {
        Command::Kv(k) => out(run_kv(client, k).await?),
        Command::Lock(l) => out(run_lock(client, l).await?),
        Command::Config(Config::Watch {
            prefix,
            from,
            count,
            poll,
        }) => watch(client, prefix, *from, *count, *poll, &mut out).await?,
        Command::Config(c) => out(run_config(client, c).await?),
        Command::Member(m) => out(run_member(client, m).await?),
        Command::Leader(Leader::Transfer { to }) => {
            let reply = client.call(&admin::transfer_leader(to.as_deref())).await?;
            out(admin::changed("transfer", &reply)?)
        }
        Command::Cluster(ClusterCmd::Status) => out(cluster::report(client, false).await?),
        Command::Cluster(ClusterCmd::Health) => out(cluster::report(client, true).await?),
        Command::Snapshot(Snapshot::Save { file }) => out(snapshot::save(client, file).await?),
        Command::Snapshot(Snapshot::Compact) => out(snapshot::compact(client).await?),
        Command::Snapshot(Snapshot::Take) => out(admin::snapshot_taken(&client.call(&admin::take_snapshot()).await?)?),
    }
    Ok(verdict)
}

async fn run_kv(client: &Client, k: &Kv) -> Result<Report, CtlError> {
    match k {
        Kv::Put { key, value } => kv::written(key, &client.call(&kv::put(key, value)).await?, "kv_put"),
        Kv::Get { key, stale } => kv::got(key, &client.call(&kv::get(key, *stale)).await?),
        Kv::Del { key } => kv::written(key, &client.call(&kv::del(key)).await?, "kv_delete"),
        Kv::Cas(c) => {
            let expected = if c.expect_absent { None } else { c.expected.as_deref() };
            let new = if c.delete { None } else { c.new.as_deref() };
            kv::swapped(&c.key, &client.call(&kv::cas(&c.key, expected, new)).await?)
        }
        Kv::Scan { prefix, limit } => kv::scanned(&client.call(&kv::scan(prefix, *limit)).await?),
    }
}

async fn run_lock(client: &Client, l: &Lock) -> Result<Report, CtlError> {
    match l {
        Lock::Acquire { name, owner, ttl, wait } => lock::granted(
            name,
            &client.call(&lock::acquire(name, owner, *ttl, *wait)).await?,
            "lock_acquire",
        ),
        Lock::Renew {
            name,
            owner,
            token,
            ttl,
        } => lock::granted(
            name,
            &client.call(&lock::renew(name, owner, *token, *ttl)).await?,
            "lock_renew",
        ),
        Lock::Release { name, owner, token } => {
            lock::released(name, &client.call(&lock::release(name, owner, *token)).await?)
        }
        Lock::Holder { name } => lock::held(name, &client.call(&lock::holder(name)).await?),
    }
}

async fn run_config(client: &Client, c: &Config) -> Result<Report, CtlError> {
    match c {
        Config::Set { key, value } => {
            config::versioned(key, &client.call(&config::set(key, value)).await?, "config_set")
        }
        Config::Get { key, prefix: true } => config::listed(&client.call(&config::list(key)).await?),
        Config::Get { key, prefix: false } => config::got(key, &client.call(&config::get(key)).await?),
        Config::Del { key } => config::versioned(key, &client.call(&config::del(key)).await?, "config_delete"),
        Config::Rollback { key, to, prefix } => {
            config::rolled_back(&client.call(&config::rollback(key, *prefix, *to)).await?)
        }
        Config::History { prefix, since } => config::history(
            &client
                .call(&config::watch(prefix, *since, std::time::Duration::ZERO))
                .await?,
        ),
        Config::Watch { .. } => Err(CtlError::Usage("config watch streams: use run".into())),
    }
}

async fn watch(
    client: &Client,
    prefix: &str,
    from: Option<u64>,
    count: Option<u64>,
    poll: std::time::Duration,
    out: &mut dyn FnMut(Report),
) -> Result<(), CtlError> {
    let mut version = match from {
        Some(v) => v,
        None => {
            let reply = client.call(&config::list(prefix)).await?;
            let listed: config::Listed = parse(&reply, "config_list")?;
            listed.version
        }
    };
    let mut seen = 0u64;
    loop {
        if count.is_some_and(|c| seen >= c) {
            return Ok(());
        }
        let reply = client.call(&config::watch(prefix, version, poll)).await?;
        let answer: config::Watched = parse(&reply, "config_watch")?;
        let (events, next) = config::watch_events(&answer);
        tracing::debug!(from = version, next, events = events.len(), "watch answer");
        version = next;
        for e in events {
            if count.is_some_and(|c| seen >= c) {
                return Ok(());
            }
            // A resync is not a change: it does not count.
            if e.json.get("resync").is_none() {
                seen += 1;
            }
            out(e);
        }
    }
}

async fn run_member(client: &Client, m: &Member) -> Result<Report, CtlError> {
    match m {
        Member::List => {
            let reply = client.call(&admin::members()).await?;
            // Off the leader, match and lag are unknown: ask the leader once more.
            if let Some(leader) = admin::leader_view(&admin::parse_members(&reply)?, &reply.endpoint) {
                let mut settings = client.settings.clone();
                settings.endpoints = vec![leader];
                settings.deadline = settings.timeout;
                let direct = client.with_settings(settings);
                match direct.call(&admin::members()).await {
                    Ok(better) => return admin::members_report(&better),
                    Err(e) => tracing::debug!(error = %e, "the leader's view is not available"),
                }
            }
            admin::members_report(&reply)
        }
        Member::Add { id, peer, client: c } => admin::changed(
            "add-learner",
            &client.call(&admin::add_learner(id, peer, c.as_deref())).await?,
        ),
        Member::Promote { id } => admin::changed("promote", &client.call(&admin::promote(id)).await?),
        Member::Remove { id } => admin::changed("remove", &client.call(&admin::remove(id)).await?),
        Member::Replace {
            old,
            id,
            peer,
            client: c,
        } => admin::changed(
            "replace",
            &client.call(&admin::replace(old, id, peer, c.as_deref())).await?,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_comes_from_the_flag_then_the_file_then_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "from-file\n").unwrap();
        let env = || Some("from-env".to_string());
        assert_eq!(admin_token(Some("flag"), None, env()).unwrap().as_deref(), Some("flag"));
        assert_eq!(
            admin_token(None, Some(&file), env()).unwrap().as_deref(),
            Some("from-file")
        );
        assert_eq!(admin_token(None, None, env()).unwrap().as_deref(), Some("from-env"));
        assert_eq!(admin_token(None, None, None).unwrap(), None);
        assert!(matches!(
            admin_token(Some("a"), Some(&file), None),
            Err(CtlError::Usage(_))
        ));
        std::fs::write(&file, "\n").unwrap();
        assert!(matches!(admin_token(None, Some(&file), None), Err(CtlError::Usage(_))));
        let missing = admin_token(None, Some(&dir.path().join("nope")), None).unwrap_err();
        assert!(missing.to_string().contains("nope"), "{missing}");
    }
}
