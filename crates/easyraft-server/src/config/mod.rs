//! The server's configuration: a TOML file, then `EASYRAFT_…` environment variables,
//! then command-line flags (flags win). See `deploy/easyraft.toml` for every key.
//!
//! [`Config`] and its keys' types are in `settings`, reading them from the file, the
//! environment and flags in `sources`, the checks in `validate`, and the errors in
//! `error`.

mod error;
mod settings;
mod sources;
mod validate;

pub use self::error::{ConfigError, Origin};
pub(crate) use self::settings::is_discovery_url;
pub use self::settings::{ClientTlsFiles, Config, InitialCluster, Service, TlsFiles};
pub use self::sources::{env_overrides, Override};
