//! Where the configuration comes from: a TOML file, then `EASYRAFT_…` environment
//! variables, then command-line flags (flags win), each override checked on its own so
//! that an error names its key, line or origin.

use std::path::Path;

use super::error::{ConfigError, Origin};
use super::settings::Config;

/// One setting from the environment or a flag: a dotted key (`raft.election_timeout`)
/// and its text.
#[derive(Clone, Debug)]
pub struct Override {
    /// The dotted key.
    pub key: String,
    /// The value as written.
    pub value: String,
    /// Where it came from.
    pub origin: Origin,
}

/// The `EASYRAFT_…` variables: `EASYRAFT_DATA_DIR` is `data_dir`,
/// `EASYRAFT_RAFT_ELECTION_TIMEOUT` is `raft.election_timeout`.
pub fn env_overrides(vars: impl IntoIterator<Item = (String, String)>) -> Vec<Override> {
    let mut out: Vec<Override> = vars
        .into_iter()
        .filter_map(|(name, value)| {
            let rest = name.strip_prefix("EASYRAFT_")?.to_ascii_lowercase();
            let key = match rest.strip_prefix("raft_") {
                Some(field) => format!("raft.{field}"),
                None => rest,
            };
            Some(Override {
                key,
                value,
                origin: Origin::Env(name),
            })
        })
        .collect();
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

fn is_unknown_key(e: &toml::de::Error) -> bool {
    e.message().starts_with("unknown field")
}

impl Config {
    /// Parses a TOML document; `path` names it in errors, which give the key, the line
    /// and the reason.
    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| file_error(text, path, &e))
    }

    /// Reads `path` (if any), applies `overrides` in order (later wins), validates.
    pub fn load(path: Option<&Path>, overrides: &[Override]) -> Result<Config, ConfigError> {
        let base = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_path_buf(),
                    source,
                })?;
                Config::from_toml(&text, p)?
            }
            None => Config::default(),
        };
        let mut config = base.with_overrides(overrides)?;
        config.validate()?;
        Ok(config)
    }

    /// This configuration with `overrides` applied, each checked on its own so an error
    /// names its key and origin.
    pub fn with_overrides(self, overrides: &[Override]) -> Result<Config, ConfigError> {
        let mut table = toml::Table::try_from(&self).map_err(|e| ConfigError::Internal(e.to_string()))?;
        let mut config = self;
        for o in overrides {
            let bad = |reason: String| ConfigError::Override {
                key: o.key.clone(),
                origin: o.origin.clone(),
                reason,
            };
            let before = table.clone();
            set(&mut table, &o.key, &o.value).map_err(bad)?;
            match table.clone().try_into::<Config>() {
                Ok(c) => config = c,
                // `EASYRAFT_…` is shared with other tools (easyraftctl's
                // EASYRAFT_ENDPOINTS, the test runner's EASYRAFT_PYTHON): a variable
                // that names no key is left alone (see `unknown_env`), a bad value of
                // a key is an error.
                Err(e) if matches!(o.origin, Origin::Env(_)) && is_unknown_key(&e) => table = before,
                Err(e) => return Err(bad(e.message().to_string())),
            }
        }
        Ok(config)
    }

    /// The `EASYRAFT_…` variables among `vars` that name no configuration key (they are
    /// ignored; the binary says so, in case one is a typo). easyraftctl's own
    /// variables, often set in the same shell, are not reported.
    pub fn unknown_env(vars: impl IntoIterator<Item = (String, String)>) -> Vec<String> {
        const CTL: &[&str] = &["EASYRAFT_ENDPOINTS", "EASYRAFT_ADMIN_TOKEN"];
        let vars = vars.into_iter().filter(|(name, _)| !CTL.contains(&name.as_str()));
        let Ok(table) = toml::Table::try_from(Config::default()) else {
            return Vec::new();
        };
        env_overrides(vars)
            .into_iter()
            .filter(|o| {
                let mut t = table.clone();
                set(&mut t, &o.key, &o.value).is_ok() && t.try_into::<Config>().is_err_and(|e| is_unknown_key(&e))
            })
            .filter_map(|o| match o.origin {
                Origin::Env(name) => Some(name),
                Origin::Flag(_) => None,
            })
            .collect()
    }

    /// The effective configuration as TOML (`--print-config`).
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        toml::to_string(self).map_err(|e| ConfigError::Internal(e.to_string()))
    }
}

/// Top-level integer keys that default to absent.
const OPTIONAL_INTEGERS: &[&str] = &["bootstrap_expect"];

/// Sets dotted `key` in `table` to `raw`, typed like the value it replaces.
fn set(table: &mut toml::Table, key: &str, raw: &str) -> Result<(), String> {
    let (section, field) = match key.split_once('.') {
        Some((s, f)) => (Some(s), f),
        None => (None, key),
    };
    let target = match section {
        None => table,
        Some(s) => match table.entry(s).or_insert_with(|| toml::Value::Table(Default::default())) {
            toml::Value::Table(t) => t,
            _ => return Err(format!("{s} is not a section")),
        },
    };
    let value = match target.get(field) {
        // Integer keys with no default are absent from the table: typed by name.
        None if section.is_none() && OPTIONAL_INTEGERS.contains(&field) => {
            toml::Value::Integer(raw.trim().parse().map_err(|_| format!("{raw:?} is not an integer"))?)
        }
        Some(toml::Value::Integer(_)) => {
            toml::Value::Integer(raw.trim().parse().map_err(|_| format!("{raw:?} is not an integer"))?)
        }
        Some(toml::Value::Boolean(_)) => toml::Value::Boolean(match raw.trim() {
            "true" | "1" | "yes" => true,
            "false" | "0" | "no" => false,
            _ => return Err(format!("{raw:?} is not a boolean (true or false)")),
        }),
        Some(toml::Value::Array(_)) => toml::Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_string()))
                .collect(),
        ),
        _ => toml::Value::String(raw.to_string()),
    };
    target.insert(field.to_string(), value);
    Ok(())
}

/// A TOML error with its line, and the key on that line (`section.key`).
fn file_error(text: &str, path: &Path, e: &toml::de::Error) -> ConfigError {
    let offset = e.span().map_or(0, |s| s.start).min(text.len());
    let line = text[..offset].matches('\n').count() + 1;
    let mut key = None;
    let mut section = None;
    for (n, l) in text.lines().enumerate() {
        let l = l.trim();
        if n + 1 > line {
            break;
        }
        if l.starts_with('[') {
            section = Some(l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
            if n + 1 == line {
                key = section.clone();
            }
        } else if n + 1 == line {
            key = l.split_once('=').map(|(k, _)| k.trim().trim_matches('"').to_string());
        }
    }
    let key = match (section, key) {
        (Some(s), Some(k)) if s != k => Some(format!("{s}.{k}")),
        (_, k) => k,
    };
    ConfigError::File {
        path: path.to_path_buf(),
        line,
        key: key.unwrap_or_else(|| "?".into()),
        reason: e.message().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::settings::Service;

    fn env(pairs: &[(&str, &str)]) -> Vec<Override> {
        env_overrides(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn a_bad_value_names_its_key_and_line() {
        let text = "id = \"n1\"\n\n[raft]\nelection_timeout = \"3 fortnights\"\n";
        let e = Config::from_toml(text, Path::new("x.toml")).unwrap_err().to_string();
        assert!(e.contains("x.toml:4") && e.contains("raft.election_timeout"), "{e}");
        let e = Config::from_toml("id = \"n1\"\nlisten_peer = 5\n", Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.toml:2") && e.contains("listen_peer"), "{e}");
        let e = Config::from_toml("idd = \"n1\"\n", Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.toml:1") && e.contains("idd"), "{e}");
    }

    #[test]
    fn flags_win_over_the_environment_which_wins_over_the_file() {
        let file = Config::from_toml(
            "id = \"n1\"\ninitial_cluster = \"n1=127.0.0.1:1,n2=127.0.0.1:2\"\npromote_lag = 5\n[raft]\npre_vote = false\n",
            Path::new("f"),
        )
        .unwrap();
        let mut o = env(&[
            ("EASYRAFT_PROMOTE_LAG", "7"),
            ("EASYRAFT_RAFT_ELECTION_TIMEOUT", "300ms"),
            ("HOME", "/"),
        ]);
        o.push(Override {
            key: "promote_lag".into(),
            value: "9".into(),
            origin: Origin::Flag("--promote-lag".into()),
        });
        let c = file.with_overrides(&o).unwrap();
        assert_eq!(c.promote_lag, 9);
        assert_eq!(c.raft.election_timeout, Duration::from_millis(300));
        assert!(!c.raft.pre_vote);
        assert_eq!(c.initial_cluster.0.len(), 2);
        let e = Config::default()
            .with_overrides(&env(&[("EASYRAFT_PROMOTE_LAG", "many")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("EASYRAFT_PROMOTE_LAG") && e.contains("promote_lag"), "{e}");
        // An integer key with no default is typed by name, from a variable or a flag.
        let c = Config::default()
            .with_overrides(&env(&[("EASYRAFT_BOOTSTRAP_EXPECT", "3")]))
            .unwrap();
        assert_eq!(c.bootstrap_expect, Some(3));
        let e = Config::default()
            .with_overrides(&env(&[("EASYRAFT_BOOTSTRAP_EXPECT", "three")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("bootstrap_expect") && e.contains("not an integer"), "{e}");
    }

    #[test]
    fn the_printed_config_reads_back_the_same() {
        let mut c = Config {
            id: "n1".into(),
            join: Some("127.0.0.1:7000".into()),
            ..Config::default()
        };
        c.validate().unwrap();
        let text = c.to_toml().unwrap();
        assert_eq!(Config::from_toml(&text, Path::new("p")).unwrap(), c);
    }

    #[test]
    fn quiescence_is_refused_for_a_servers_one_group() {
        let mut c = Config::from_toml(
            "id = \"n1\"\njoin = \"127.0.0.1:7000\"\n[raft]\nquiesce = true\n",
            Path::new("q"),
        )
        .unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("raft.quiesce"), "{e}");
    }

    #[test]
    fn the_example_file_in_deploy_is_valid() {
        let text = include_str!("../../../../deploy/easyraft.toml");
        let mut c = Config::from_toml(text, Path::new("deploy/easyraft.toml")).unwrap();
        c.validate().unwrap();
        assert_eq!(c.raft, easyraft::RaftConfig::default());
        assert_eq!(c.initial_cluster.0.len(), 3);
    }

    #[test]
    fn every_service_is_served_by_default_and_each_can_be_named() {
        assert_eq!(Config::default().services.len(), 5);
        let c = Config::from_toml("services = [\"queue\", \"registry\"]", Path::new("p")).unwrap();
        assert_eq!(c.services, [Service::Queue, Service::Registry]);
    }
}
