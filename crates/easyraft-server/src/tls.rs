//! `[tls]`: the certificate chain and key (PEM files) for `wss://` between peers, and
//! the CA peers' certificates are checked against (by default the node's own chain: a
//! cluster sharing one certificate). `[client_tls]`: the same for HTTPS on the client
//! port.

use std::path::Path;
use std::sync::Arc;

use easyraft::transport_ws::TlsConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};

use crate::config::{ClientTlsFiles, ConfigError, TlsFiles};

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

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS server configuration from a certificate chain and a key file; `section` names
/// the config section in errors.
fn server_config(
    section: &str,
    cert: &Path,
    key: &Path,
) -> Result<(ServerConfig, Vec<CertificateDer<'static>>), ConfigError> {
    let chain = certs(&format!("{section}.cert"), cert)?;
    let key_name = format!("{section}.key");
    let pem = std::fs::read(key).map_err(|e| invalid(&key_name, key, e))?;
    let private = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| invalid(&key_name, key, e))?;
    let server = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(section, cert, e))?
        .with_no_client_auth()
        .with_single_cert(chain.clone(), private)
        .map_err(|e| invalid(&key_name, key, e))?;
    Ok((server, chain))
}

/// The client port's TLS acceptor from the files `client_tls` names.
pub fn client_port_tls(files: &ClientTlsFiles) -> Result<tokio_rustls::TlsAcceptor, ConfigError> {
    let (server, _) = server_config("client_tls", &files.cert, &files.key)?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(server)))
}

/// The transport's TLS settings from the files `tls` names.
pub fn peer_tls(files: &TlsFiles) -> Result<TlsConfig, ConfigError> {
    let (server, chain) = server_config("tls", &files.cert, &files.key)?;
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
    let client = ClientConfig::builder_with_provider(provider())
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
