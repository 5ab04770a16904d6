//! One HTTP/1.1 exchange with one endpoint (hyper's client connection over a fresh TCP
//! connection), telling apart "could not connect" (nothing was sent) from "no answer"
//! (the request may have been sent), which the retry policy needs.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::endpoint::Endpoint;

/// The largest non-streamed body read (a JSON answer, a status).
pub const MAX_BODY: usize = 64 << 20;

/// Why an exchange failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpError {
    /// No connection: nothing was sent.
    Connect(String),
    /// Connected, then no (complete) answer: the request may have been sent.
    Exchange(String),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Connect(r) => write!(f, "cannot connect: {r}"),
            HttpError::Exchange(r) => write!(f, "no answer: {r}"),
        }
    }
}

/// An open response whose body is read as it comes; the connection lives as long as it.
pub struct Streaming {
    /// The response (status, headers, body).
    pub response: Response<Incoming>,
    _conn: AbortOnDrop,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A whole answer.
#[derive(Clone, Debug)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The `Location` header, if any (for redirects).
    pub location: Option<String>,
    /// The body.
    pub body: Bytes,
}

/// The rustls client configuration for `https://` endpoints.
#[cfg(feature = "tls")]
pub type TlsConfig = std::sync::Arc<tokio_rustls::rustls::ClientConfig>;

/// A connection, plain or TLS.
pub(crate) trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// How to reach endpoints.
#[derive(Clone, Debug)]
pub struct HttpClient {
    /// The TCP connect timeout (TLS handshake included).
    pub connect_timeout: Duration,
    /// For `https://` endpoints: trusts these CA certificates.
    #[cfg(feature = "tls")]
    pub tls: Option<TlsConfig>,
}

/// Reads the PEM certificates of `cacert` into a rustls client configuration (ring).
#[cfg(feature = "tls")]
pub fn tls_config(cacert: &std::path::Path) -> Result<TlsConfig, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    use tokio_rustls::rustls;
    let shown = cacert.display();
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(cacert).map_err(|e| format!("{shown}: {e}"))?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("{shown}: {e}"))?;
        roots.add(cert).map_err(|e| format!("{shown}: {e}"))?;
    }
    if roots.is_empty() {
        return Err(format!("{shown}: no PEM certificate in it"));
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(std::sync::Arc::new(config))
}

impl HttpClient {
    /// A client; `cacert` (PEM) is needed for `https://` endpoints.
    pub fn new(connect_timeout: Duration, cacert: Option<&std::path::Path>) -> Result<HttpClient, String> {
        #[cfg(feature = "tls")]
        {
            let tls = cacert.map(tls_config).transpose()?;
            Ok(HttpClient { connect_timeout, tls })
        }
        #[cfg(not(feature = "tls"))]
        match cacert {
            Some(_) => Err("a CA certificate needs easyraft-client built with the `tls` feature".into()),
            None => Ok(HttpClient { connect_timeout }),
        }
    }

    /// Whether `https://` endpoints can be reached.
    pub fn has_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.tls.is_some();
        #[cfg(not(feature = "tls"))]
        false
    }

    /// Connects to `ep` (TCP, then TLS for `https://`), within the connect timeout.
    pub(crate) async fn connect(&self, ep: &Endpoint) -> Result<Box<dyn Io>, HttpError> {
        let authority = ep.authority();
        let limit = self.connect_timeout;
        let work = async {
            let tcp = TcpStream::connect(authority.as_str())
                .await
                .map_err(|e| HttpError::Connect(e.to_string()))?;
            let _ = tcp.set_nodelay(true);
            if !ep.tls {
                return Ok(Box::new(tcp) as Box<dyn Io>);
            }
            self.tls_wrap(ep, tcp).await
        };
        tokio::time::timeout(limit, work)
            .await
            .map_err(|_| HttpError::Connect(format!("timed out after {} ms", limit.as_millis())))?
    }

    #[cfg(feature = "tls")]
    async fn tls_wrap(&self, ep: &Endpoint, tcp: TcpStream) -> Result<Box<dyn Io>, HttpError> {
        let Some(config) = &self.tls else {
            return Err(HttpError::Connect("https:// needs a CA certificate (`cacert`)".into()));
        };
        let name = rustls_pki_types::ServerName::try_from(ep.host.clone())
            .map_err(|e| HttpError::Connect(format!("TLS: bad server name {:?}: {e}", ep.host)))?;
        let stream = tokio_rustls::TlsConnector::from(config.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| HttpError::Connect(format!("TLS: {e}")))?;
        Ok(Box::new(stream))
    }

    #[cfg(not(feature = "tls"))]
    async fn tls_wrap(&self, _ep: &Endpoint, _tcp: TcpStream) -> Result<Box<dyn Io>, HttpError> {
        Err(HttpError::Connect("built without the `tls` feature".into()))
    }

    /// Sends `method path` with `body` to `ep`, with an optional bearer token, and
    /// returns the response head once it arrives (within `timeout` of connecting).
    pub async fn open(
        &self,
        ep: &Endpoint,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Bytes,
        timeout: Duration,
    ) -> Result<Streaming, HttpError> {
        let authority = ep.authority();
        let io = self.connect(ep).await?;
        let work = async {
            let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(io))
                .await
                .map_err(|e| HttpError::Exchange(e.to_string()))?;
            let guard = AbortOnDrop(tokio::spawn(async move {
                let _ = conn.await;
            }));
            let mut req = Request::builder()
                .method(method)
                .uri(path)
                .header(hyper::header::HOST, authority.as_str());
            if !body.is_empty() {
                req = req.header(hyper::header::CONTENT_TYPE, "application/json");
            }
            if let Some(t) = token {
                req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
            }
            // A bad token (a newline in it) is refused here, before anything is sent.
            let req = req
                .body(Full::new(body))
                .map_err(|e| HttpError::Connect(format!("bad request: {e}")))?;
            let response = sender
                .send_request(req)
                .await
                .map_err(|e| HttpError::Exchange(e.to_string()))?;
            Ok(Streaming { response, _conn: guard })
        };
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| HttpError::Exchange(format!("timed out after {} ms", timeout.as_millis())))?
    }

    /// [`open`](Self::open), then reads the whole body (at most [`MAX_BODY`]), all
    /// within `timeout`.
    pub async fn exchange(
        &self,
        ep: &Endpoint,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Bytes,
        timeout: Duration,
    ) -> Result<Answer, HttpError> {
        let start = tokio::time::Instant::now();
        let s = self.open(ep, method, path, token, body, timeout).await?;
        let status = s.response.status().as_u16();
        let location = s
            .response
            .headers()
            .get(hyper::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let left = timeout.saturating_sub(start.elapsed());
        let limited = http_body_util::Limited::new(s.response.into_body(), MAX_BODY);
        let body = tokio::time::timeout(left, limited.collect())
            .await
            .map_err(|_| HttpError::Exchange(format!("timed out after {} ms reading the body", timeout.as_millis())))?
            .map_err(|e| HttpError::Exchange(format!("reading the body: {e}")))?
            .to_bytes();
        Ok(Answer { status, location, body })
    }
}
