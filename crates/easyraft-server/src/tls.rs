//! `[tls]`: the certificate chain and key (PEM files) for `wss://` between peers, and
//! the CA peers' certificates are checked against (by default the node's own chain: a
//! cluster sharing one certificate).

use std::path::Path;
use std::sync::Arc;

use easyraft::transport_ws::TlsConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};

use crate::config::TlsFiles;
use crate::error::ConfigError;

fn invalid(key: &str, path: &Path, reason: impl std::fmt::Display) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        reason: format!("{}: {reason}", path.display()),
    }
}

fn certs(key: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let pem = std::fs::read(path).map_err(|e| invalid(key, path, e))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(key, path, e))?;
    if certs.is_empty() {
        return Err(invalid(key, path, "holds no PEM certificate"));
    }
    Ok(certs)
}

/// The transport's TLS settings from the files `tls` names.
pub fn peer_tls(files: &TlsFiles) -> Result<TlsConfig, ConfigError> {
    let chain = certs("tls.cert", &files.cert)?;
    let pem = std::fs::read(&files.key).map_err(|e| invalid("tls.key", &files.key, e))?;
    let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| invalid("tls.key", &files.key, e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("tls", &files.cert, e))?
        .with_no_client_auth()
        .with_single_cert(chain.clone(), key)
        .map_err(|e| invalid("tls.key", &files.key, e))?;
    let trusted = match &files.ca {
        Some(ca) => certs("tls.ca", ca)?,
        None => chain,
    };
    let mut roots = RootCertStore::empty();
    for c in trusted {
        roots
            .add(c)
            .map_err(|e| invalid("tls.ca", files.ca.as_deref().unwrap_or(&files.cert), e))?;
    }
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("tls", &files.cert, e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConfig {
        server: Arc::new(server),
        client: Arc::new(client),
        server_name: files.server_name.clone(),
    })
}
